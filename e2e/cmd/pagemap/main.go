// Command pagemap shows which pages of a binary one process has resident
// and another has not, attributed to the binary's sections, and, within
// .text and .gopclntab, to Go packages. It is how docs/performance.md
// ("A standby's own cost") tells what a standby touches that the same
// binary without our block does not:
//
//	make standby-cost SCALE_FLAGS=--hold=/tmp/hold   # keeps a pair running
//	go run ./cmd/pagemap --binary ../bin/otelcol-leader --pids "$(cat /tmp/hold)"
//
// It reads /proc/<pid>/maps and /proc/<pid>/pagemap (the present bit: needs
// root, or the processes' own user). Text is attributed through the ELF
// symbol table, so only an unstripped build names packages there (-ldflags
// without -s); .gopclntab needs no symbols. A page counts as resident when
// the process maps it: the kernel maps the pages around each one a process
// faults on (fault-around, 64 KiB by default), so the figures are those of
// RSS, not of the bytes touched.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	binary := flag.String("binary", "", "the executable both processes run")
	pids := flag.String("pids", "", `"A B": show the pages resident in B and not in A`)
	top := flag.Int("top", 30, "rows per table")
	flag.Parse()
	a, b, err := parsePIDs(*pids)
	if err == nil && *binary == "" {
		err = fmt.Errorf("--binary: required")
	}
	if err == nil {
		err = run(*binary, a, b, *top)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pagemap:", err)
		os.Exit(1)
	}
}

func parsePIDs(s string) (int, int, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' })
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("--pids %q: two process IDs", s)
	}
	a, err1 := strconv.Atoi(f[0])
	b, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("--pids %q: two process IDs", s)
	}
	return a, b, nil
}

func run(binary string, a, b, top int) error {
	img, err := openImage(binary)
	if err != nil {
		return err
	}
	defer func() { _ = img.Close() }()
	ra, err := resident(a, binary)
	if err != nil {
		return err
	}
	rb, err := resident(b, binary)
	if err != nil {
		return err
	}
	onlyB := onlyIn(rb, ra)
	d := img.attribute(onlyB)
	fmt.Printf("pages of %s resident: %d %.2f MiB, %d %.2f MiB\n", binary, a, mib(len(ra)), b, mib(len(rb)))
	fmt.Printf("only in %d: %.2f MiB; only in %d: %.2f MiB\n", b, mib(len(onlyB)), a, mib(len(onlyIn(ra, rb))))
	fmt.Printf("\nonly in %d, by section:\n%s", b, table(d.sections, top))
	fmt.Printf("\nonly in %d, .gopclntab by table and package:\n%s", b, table(d.pclntab, top))
	fmt.Printf("\nonly in %d, .text by package (an unstripped binary):\n%s", b, table(d.text, top))
	return nil
}

func mib(pages int) float64 { return float64(pages*pageSize) / (1 << 20) }
