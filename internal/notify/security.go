package notify

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Script security, with keepalived's rules (keepalived.conf(5), SCRIPTS and
// enable_script_security):
//
//   - a bare name is looked up in PATH (with a warning to give the full
//     path); a script that cannot be found or accessed is refused;
//   - a script that is not executable by the user it runs as is refused;
//   - a script that runs as root (user or group), or is set-uid/set-gid
//     root, must not be modifiable or replaceable by anyone but root: the
//     file and every directory of its path (checked without following
//     symbolic links, on the path with its directories resolved and on the
//     file it finally points to) must be owned by root and not writable by
//     a non-root group or by everyone; a directory with the sticky bit
//     (/tmp) may be writable. Each path component must be a directory, the
//     last a file or a symbolic link.
//   - with enable_script_security, an unsafe script is refused; without,
//     it is run and a warning is logged, as keepalived does.
//
// Every refusal says which file and why.

// ErrRefused wraps every reason a script is not run.
var ErrRefused = errors.New("script refused")

// defaultPath is what glibc searches when PATH is unset.
const defaultPath = "/bin:/usr/bin"

// checkScript applies the rules to the script file arg0 for the identity
// it runs as, and returns the path to execute.
func checkScript(arg0 string, id identity, security bool, warn func(string)) (string, error) {
	name := arg0
	if !strings.Contains(name, "/") {
		found, err := lookPath(name, id)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrRefused, err)
		}
		warn(fmt.Sprintf("script %q resolved by path search to %q; please give the full path", name, found))
		name = found
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrRefused, name, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %s cannot be accessed: %v", ErrRefused, abs, unwrapPathError(err))
	}
	// Execute the path with its directories resolved. keepalived keeps
	// the file name the user gave when it is a link to the same file
	// under another name (programs may act on their name), and checks
	// both that path and the file it points to.
	exe, alsoCheck := real, ""
	if filepath.Base(real) != filepath.Base(abs) {
		if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
			p := filepath.Join(dir, filepath.Base(abs))
			fp, err1 := os.Stat(p)
			fr, err2 := os.Stat(real)
			if err1 == nil && err2 == nil && os.SameFile(fp, fr) {
				exe, alsoCheck = p, real
			}
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("%w: %s cannot be accessed: %v", ErrRefused, real, unwrapPathError(err))
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file", ErrRefused, real)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := searchable(exe, id); err != nil {
		return "", fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if !executable(st, id) {
		return "", fmt.Errorf("%w: %s is not executable by uid:gid %d:%d (mode %s, owner %d:%d)",
			ErrRefused, real, id.uid, id.gid, fi.Mode(), st.Uid, st.Gid)
	}
	asRoot := id.uid == 0 || id.gid == 0 ||
		(st.Uid == 0 && st.Mode&syscall.S_IXUSR != 0 && st.Mode&syscall.S_ISUID != 0) ||
		(st.Gid == 0 && st.Mode&syscall.S_IXGRP != 0 && st.Mode&syscall.S_ISGID != 0)
	if !asRoot {
		return exe, nil
	}
	for _, p := range []string{exe, alsoCheck} {
		if p == "" {
			continue
		}
		reason, err := pathSecurity(p)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrRefused, err)
		}
		if reason == "" {
			continue
		}
		who := "root"
		if id.uid != 0 {
			who = fmt.Sprintf("uid %d with root privileges", id.uid)
		}
		if security {
			return "", fmt.Errorf("%w: %s would run as %s but %s, so a non-root user could change what root runs (enable_script_security)",
				ErrRefused, exe, who, reason)
		}
		warn(fmt.Sprintf("unsafe permissions for script %s: it runs as %s but %s; running it anyway because enable_script_security is not set",
			exe, who, reason))
		break
	}
	return exe, nil
}

// pathSecurity checks the file p and each directory above it. It returns
// why the path is unsafe ("" when safe), or an error when a component is
// missing or of the wrong type.
func pathSecurity(p string) (string, error) {
	comps := []string{"/"}
	cur := ""
	for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if part == "" {
			continue
		}
		cur += "/" + part
		comps = append(comps, cur)
	}
	for i, c := range comps {
		fi, err := os.Lstat(c)
		if err != nil {
			return "", fmt.Errorf("%s: %v", c, unwrapPathError(err))
		}
		last := i == len(comps)-1
		mode := fi.Mode()
		switch {
		case !last && !mode.IsDir():
			return "", fmt.Errorf("%s in the path of %s is not a directory", c, p)
		case last && !mode.IsRegular() && mode&fs.ModeSymlink == 0:
			return "", fmt.Errorf("%s is neither a file nor a symbolic link", c)
		}
		st := fi.Sys().(*syscall.Stat_t)
		kind := "directory"
		if last {
			kind = "file"
		}
		if st.Uid != 0 {
			return fmt.Sprintf("%s %s is owned by uid %d, not root", kind, c, st.Uid), nil
		}
		guarded := mode.IsDir() && st.Mode&syscall.S_ISVTX != 0 // sticky: only owners may replace entries
		if !guarded && (mode.IsDir() || mode.IsRegular()) {
			if st.Gid != 0 && st.Mode&syscall.S_IWGRP != 0 {
				return fmt.Sprintf("%s %s is writable by group %d (mode %s)", kind, c, st.Gid, mode), nil
			}
			if st.Mode&syscall.S_IWOTH != 0 {
				return fmt.Sprintf("%s %s is writable by everyone (mode %s)", kind, c, mode), nil
			}
		}
	}
	return "", nil
}

// searchable checks that uid:gid may walk the directories of p
// (keepalived resolves the path as the script's user and refuses the
// script when that fails).
func searchable(p string, id identity) error {
	if id.uid == 0 {
		return nil
	}
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("%s: %v", d, unwrapPathError(err))
		}
		if !executable(fi.Sys().(*syscall.Stat_t), id) {
			return fmt.Errorf("directory %s is not searchable by uid:gid %d:%d (mode %s), so %s cannot be run as that user",
				d, id.uid, id.gid, fi.Mode(), p)
		}
		if d == "/" {
			return nil
		}
	}
}

// executable is keepalived's test of whether uid:gid may execute a file.
func executable(st *syscall.Stat_t, id identity) bool {
	m := st.Mode
	switch {
	case id.uid == 0:
		return m&0o111 != 0
	case id.uid == st.Uid:
		return m&0o100 != 0
	case id.gid == st.Gid:
		return m&0o010 != 0
	}
	return m&0o001 != 0
}

// lookPath searches PATH for a bare script name, as the user who runs it.
func lookPath(name string, id identity) (string, error) {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	denied := ""
	for _, dir := range filepath.SplitList(path) {
		p := name
		if dir != "" {
			p = dir + "/" + name
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if !fi.Mode().IsRegular() || !executable(fi.Sys().(*syscall.Stat_t), id) {
			if denied == "" {
				denied = p
			}
			continue
		}
		return p, nil
	}
	if denied != "" {
		return "", fmt.Errorf("%s found in PATH as %s but not executable by uid:gid %d:%d", name, denied, id.uid, id.gid)
	}
	return "", fmt.Errorf("%s not found in PATH (%s)", name, path)
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
