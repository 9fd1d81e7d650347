package main

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const pageSize = 4096

// resident is the set of page addresses of exe's mappings that process
// pid has present (bit 63 of its pagemap entries).
func resident(pid int, exe string) (map[uint64]bool, error) {
	want, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return nil, err
	}
	want, _ = filepath.Abs(want)
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	defer func() { _ = maps.Close() }()
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return nil, err
	}
	defer func() { _ = pm.Close() }()
	out := map[uint64]bool{}
	found := false
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[5] != want {
			continue
		}
		found = true
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		n := (end - start) / pageSize
		buf := make([]byte, 8*n)
		if _, err := pm.ReadAt(buf, int64(start/pageSize*8)); err != nil {
			return nil, fmt.Errorf("/proc/%d/pagemap: %w", pid, err)
		}
		for i := range n {
			if binary.LittleEndian.Uint64(buf[8*i:])&(1<<63) != 0 {
				out[start+i*pageSize] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("process %d does not map %s", pid, want)
	}
	return out, nil
}

// onlyIn is the pages of x that are not in y.
func onlyIn(x, y map[uint64]bool) []uint64 {
	var out []uint64
	for p := range x {
		if !y[p] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// image is the binary: its sections, its symbols (if any) and the
// functions' entries in its pclntab.
type image struct {
	f     *elf.File
	syms  []elf.Symbol // functions, by address
	pcln  *elf.Section
	pclnT pclnTables
}

func openImage(path string) (*image, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	img := &image{f: f, pcln: f.Section(".gopclntab")}
	var gofunc, findfunctab uint64 // addresses, 0 if the symbol table has none
	if syms, err := f.Symbols(); err == nil {
		for _, s := range syms {
			switch {
			case s.Name == "go:func.*":
				gofunc = s.Value
			case s.Name == "runtime.findfunctab":
				findfunctab = s.Value
			case elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0:
				img.syms = append(img.syms, s)
			}
		}
		sort.Slice(img.syms, func(i, j int) bool { return img.syms[i].Value < img.syms[j].Value })
	}
	if img.pcln != nil {
		offset := func(addr uint64) uint64 { // in the section; 0 stays unknown
			if addr == 0 {
				return 0
			}
			return addr - img.pcln.Addr
		}
		data, err := img.pcln.Data()
		if err == nil {
			img.pclnT, err = parsePclntab(data, img.pcln.Addr, offset(gofunc), offset(findfunctab))
		}
		if err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return img, nil
}

func (img *image) Close() error { return img.f.Close() }

// attribution is bytes per name.
type attribution struct {
	sections, pclntab, text map[string]float64
}

func (img *image) attribute(pages []uint64) attribution {
	d := attribution{sections: map[string]float64{}, pclntab: map[string]float64{}, text: map[string]float64{}}
	for _, p := range pages {
		sec := img.section(p)
		d.sections[sec] += pageSize
		switch sec {
		case ".gopclntab":
			img.pclnT.attribute(p-img.pcln.Addr, d.pclntab)
		case ".text":
			img.attributeText(p, d.text)
		}
	}
	return d
}

func (img *image) section(addr uint64) string {
	for _, s := range img.f.Sections {
		if s.Addr != 0 && addr >= s.Addr && addr < s.Addr+s.Size {
			return s.Name
		}
	}
	return "(none)"
}

// attributeText splits the page at addr among the functions it holds.
func (img *image) attributeText(addr uint64, into map[string]float64) {
	if len(img.syms) == 0 {
		into["(no symbol table: a stripped binary)"] += pageSize
		return
	}
	end := addr + pageSize
	i := sort.Search(len(img.syms), func(i int) bool { return img.syms[i].Value+img.syms[i].Size > addr })
	covered := 0.0
	for ; i < len(img.syms) && img.syms[i].Value < end; i++ {
		s := img.syms[i]
		n := float64(min(s.Value+s.Size, end) - max(s.Value, addr))
		into[packageOf(s.Name)] += n
		covered += n
	}
	if covered < pageSize {
		into["(between functions)"] += pageSize - covered
	}
}

// packageOf is the import path of a Go symbol's package: the name up to
// the first dot after its last slash (type parameters aside).
func packageOf(sym string) string {
	name := sym
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	slash := strings.LastIndexByte(name, '/')
	if dot := strings.IndexByte(name[slash+1:], '.'); dot >= 0 {
		return name[:slash+1+dot]
	}
	return name
}

func table(m map[string]float64, top int) string {
	type row struct {
		name  string
		bytes float64
	}
	var rows []row
	for k, v := range m {
		rows = append(rows, row{k, v})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].bytes != rows[j].bytes {
			return rows[i].bytes > rows[j].bytes
		}
		return rows[i].name < rows[j].name
	})
	var b strings.Builder
	for i, r := range rows {
		if i == top {
			fmt.Fprintf(&b, "  ... %d more\n", len(rows)-top)
			break
		}
		fmt.Fprintf(&b, "  %8.1f KiB  %s\n", r.bytes/1024, r.name)
	}
	return b.String()
}
