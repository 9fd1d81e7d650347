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
// (names, compilation units, files) are named as a whole. The section
// also holds, after the _func records, each function's funcdata (go:func.*:
// stack maps, argument maps, inlining trees), attributed by package too,
// and runtime.findfunctab, the index from a PC to its function.
type pclnTables struct {
	funcname, cu, filetab, pctab, pcln uint64
	gofunc, findfunctab                uint64 // offsets; findfunctab 0 if unknown
	marks                              []mark // by offset
}

type mark struct {
	off  uint64
	name string
}

const pclnMagic = 0xfffffff1

// parsePclntab reads d, the section's bytes. gofunc and findfunctab are
// the offsets of go:func.* and runtime.findfunctab in it if the symbol
// table has them, else 0: go:func.* is then taken to start at the end of
// the last _func record, its address (addr is the section's) aligned to 16
// bytes, as the linker lays it out.
func parsePclntab(d []byte, addr, gofunc, findfunctab uint64) (pclnTables, error) {
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
	type funcdata struct {
		pkg  string
		offs []uint64
	}
	var fds []funcdata
	var end uint64 // of the last _func record
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
		npcdata, nfuncdata := u32(f+28), uint64(d[f+43])
		for j := range npcdata {
			if off := u32(f + 44 + 4*j); off != 0 {
				t.marks = append(t.marks, mark{t.pctab + off, "pctab " + pkg})
			}
		}
		fd := funcdata{pkg: pkg}
		for j := range nfuncdata {
			if off := u32(f + 44 + 4*npcdata + 4*j); off != 0xffffffff {
				fd.offs = append(fd.offs, off)
			}
		}
		fds = append(fds, fd)
		end = max(end, f+44+4*npcdata+4*nfuncdata)
	}
	t.gofunc, t.findfunctab = gofunc, findfunctab
	if t.gofunc == 0 {
		t.gofunc = (addr+end+15)&^15 - addr
	}
	t.marks = append(t.marks, mark{t.gofunc, "funcdata (go:func.*)"})
	for _, fd := range fds {
		for _, off := range fd.offs {
			t.marks = append(t.marks, mark{t.gofunc + off, "funcdata " + fd.pkg})
		}
	}
	if t.findfunctab != 0 {
		t.marks = append(t.marks, mark{t.findfunctab, "findfunctab (PC to function)"})
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
