package main

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// pclnTables locates, in a Go 1.20+ .gopclntab (runtime.pcHeader, magic
// 0xfffffff1), the tables of each function: its _func record and its
// pc-value tables (stack sizes, files, lines, pcdata) in pctab, which the
// runtime reads to scan and grow stacks and to unwind them. Other tables
// (names, compilation units, files) are named as a whole.
type pclnTables struct {
	funcname, cu, filetab, pctab, pcln uint64
	marks                              []mark // by offset
}

type mark struct {
	off  uint64
	name string
}

const pclnMagic = 0xfffffff1

func parsePclntab(d []byte) (pclnTables, error) {
	var t pclnTables
	if len(d) < 72 || binary.LittleEndian.Uint32(d) != pclnMagic || d[7] != 8 {
		return t, fmt.Errorf(".gopclntab: not a 64-bit Go 1.20+ table (magic %#x)", binary.LittleEndian.Uint32(d))
	}
	u64 := func(o uint64) uint64 { return binary.LittleEndian.Uint64(d[o:]) }
	u32 := func(o uint64) uint64 { return uint64(binary.LittleEndian.Uint32(d[o:])) }
	nfunc := u64(8)
	t.funcname, t.cu, t.filetab, t.pctab, t.pcln = u64(32), u64(40), u64(48), u64(56), u64(64)
	if t.pcln+nfunc*8 > uint64(len(d)) {
		return t, fmt.Errorf(".gopclntab: %d functions do not fit", nfunc)
	}
	t.marks = append(t.marks, mark{t.pcln, "ftab (function addresses)"})
	for i := range nfunc {
		f := t.pcln + u32(t.pcln+i*8+4) // the _func record
		if f+44 > uint64(len(d)) {
			return t, fmt.Errorf(".gopclntab: function %d out of range", i)
		}
		name := cstring(d, t.funcname+u32(f+4))
		pkg := packageOf(name)
		t.marks = append(t.marks, mark{f, "_func " + pkg})
		for _, o := range []uint64{16, 20, 24} { // pcsp, pcfile, pcln
			if off := u32(f + o); off != 0 {
				t.marks = append(t.marks, mark{t.pctab + off, "pctab " + pkg})
			}
		}
		for j := range u32(f + 28) { // npcdata
			if off := u32(f + 44 + 4*j); off != 0 {
				t.marks = append(t.marks, mark{t.pctab + off, "pctab " + pkg})
			}
		}
	}
	sort.SliceStable(t.marks, func(i, j int) bool { return t.marks[i].off < t.marks[j].off })
	return t, nil
}

func cstring(d []byte, off uint64) string {
	end := off
	for end < uint64(len(d)) && d[end] != 0 {
		end++
	}
	return string(d[off:end])
}

// attribute adds the page at offset off to the table it is in or, in
// pctab and the _func records, to the packages whose tables start in it
// (shared evenly), or to the one that runs into it.
func (t pclnTables) attribute(off uint64, into map[string]float64) {
	switch {
	case off < t.funcname:
		into["header"] += pageSize
		return
	case off < t.cu:
		into["funcnametab (function names)"] += pageSize
		return
	case off < t.filetab:
		into["cutab"] += pageSize
		return
	case off < t.pctab:
		into["filetab (file names)"] += pageSize
		return
	}
	i := sort.Search(len(t.marks), func(i int) bool { return t.marks[i].off >= off })
	j := sort.Search(len(t.marks), func(i int) bool { return t.marks[i].off >= off+pageSize })
	if i == j {
		if i > 0 {
			into[t.marks[i-1].name] += pageSize
		}
		return
	}
	share := float64(pageSize) / float64(j-i)
	for _, m := range t.marks[i:j] {
		into[m.name] += share
	}
}
