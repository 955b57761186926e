// Command mkman writes the man pages vipd(8) and vipctl(8) from the
// --help output of the built binaries (internal/manpage), so that the
// manual says what --help says. scripts/package runs it:
//
//	mkman -vipd dist/vipd -vipctl dist/vipctl -version 1.2.0 -date 2026-01-31 -o dist/man
//
// The output depends only on the binaries, the version and the date.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/vipd/vipd/internal/manpage"
)

func main() {
	vipd := flag.String("vipd", "vipd", "the vipd `binary` to document")
	vipctl := flag.String("vipctl", "vipctl", "the vipctl `binary` to document")
	out := flag.String("o", ".", "output `directory` for vipd.8 and vipctl.8")
	version := flag.String("version", "dev", "the `version` the pages name")
	date := flag.String("date", "", "the `date` in the pages' footer (YYYY-MM-DD; empty: none)")
	flag.Parse()
	if err := run(*vipd, *vipctl, *out, manpage.Meta{Version: *version, Date: *date}); err != nil {
		fmt.Fprintf(os.Stderr, "mkman: %v\n", err)
		os.Exit(1)
	}
}

func run(vipdBin, vipctlBin, dir string, m manpage.Meta) error {
	vipd, vipctl, err := Pages(vipdBin, vipctlBin, m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "vipd.8"), vipd, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "vipctl.8"), vipctl, 0o644)
}

// Pages renders both pages from the binaries' help.
func Pages(vipdBin, vipctlBin string, m manpage.Meta) (vipd, vipctl []byte, err error) {
	h, err := help(vipdBin, "--help")
	if err != nil {
		return nil, nil, err
	}
	p, err := manpage.Vipd(h, m)
	if err != nil {
		return nil, nil, err
	}
	vipd = p.Roff()

	mainHelp, err := help(vipctlBin, "--help")
	if err != nil {
		return nil, nil, err
	}
	_, secs := manpage.Split(manpage.Parse(mainHelp))
	cmds := map[string]string{}
	for _, s := range secs {
		if s.Title != "Commands" {
			continue
		}
		for _, b := range s.Blocks {
			if b.Kind == manpage.Item && b.Text != "help" {
				if cmds[b.Text], err = help(vipctlBin, "help", b.Text); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	p, err = manpage.Vipctl(mainHelp, cmds, m)
	if err != nil {
		return nil, nil, err
	}
	return vipd, p.Roff(), nil
}

// help runs a binary for its help text. Help must go to stdout and exit 0.
func help(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Help text must not depend on who runs it: no socket from the
	// environment in the defaults it prints.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %v: %w: %s", bin, args, err, stderr.Bytes())
	}
	return stdout.String(), nil
}
