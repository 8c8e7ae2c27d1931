package console

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/kdefer/kdefer/kernel"
	"github.com/kdefer/kdefer/module"
	"github.com/kdefer/kdefer/printk"
	"github.com/kdefer/kdefer/procfs"
)

// The files cat and ls know: kdefer's /proc views, /proc/PID/{comm,status}
// and /sys/module/NAME/parameters/*, plus Options.Files.

// procFiles are the files of /proc besides the task directories.
var procFiles = map[string]func(k *kernel.Kernel) string{
	"/proc/softirqs":    procfs.Softirqs,
	"/proc/interrupts":  procfs.Interrupts,
	"/proc/timer_list":  procfs.TimerList,
	"/proc/loadavg":     procfs.Loadavg,
	"/proc/timer_wheel": procfs.TimerWheel, // kdefer's own: the kernel has no such file
	"/proc/workqueues":  procfs.Workqueues, // kdefer's own: the kernel's SysRq-t workqueue dump
	"/proc/modules":     procModules,
	"/proc/devices":     module.ProcDevices,
	"/proc/misc":        module.ProcMisc,
}

// Errors of file access, worded as coreutils words them (strerror).
var (
	errNoEnt = errors.New("No such file or directory")
	errIsDir = errors.New("Is a directory")
	errNoDir = errors.New("Not a directory")
	errAcces = errors.New("Permission denied")
)

// cat prints each file in turn; a file that cannot be read is reported
// ("cat: /proc/x: No such file or directory") and the others are still
// printed, as cat does.
func (sh *Shell) cat(args []string, out *bytes.Buffer) error {
	if len(args) == 0 {
		return errors.New("usage: cat FILE... (standard input is not read; 'ls /proc' lists the files)")
	}
	var errs []string
	for _, a := range args {
		text, err := sh.readFile(absPath(a))
		if err != nil {
			errs = append(errs, a+": "+err.Error())
			continue
		}
		out.WriteString(text)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\ncat: "))
	}
	return nil
}

// absPath resolves p against the console's working directory, /.
func absPath(p string) string { return path.Clean("/" + p) }

// readFile returns the text of file p (absolute, clean).
func (sh *Shell) readFile(p string) (string, error) {
	if fn, ok := sh.files[p]; ok {
		return fn(sh.k), nil
	}
	if fn, ok := procFiles[p]; ok {
		return fn(sh.k), nil
	}
	if _, err := sh.listDir(p); err == nil {
		return "", errIsDir
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "proc":
		t, err := sh.task(parts[1])
		if err != nil {
			return "", err
		}
		switch parts[2] {
		case "status":
			return procfs.TaskStatus(t), nil
		case "comm":
			return procfs.TaskName(t) + "\n", nil
		}
	case len(parts) == 5 && parts[0] == "sys" && parts[1] == "module" && parts[3] == "parameters":
		v, err := procfs.ModuleParam(sh.k, parts[2], parts[4])
		switch {
		case errors.Is(err, kernel.EACCES):
			return "", errAcces
		case err != nil:
			return "", errNoEnt
		}
		return v, nil
	}
	return "", errNoEnt
}

// task returns the live task whose pid is the string pid.
func (sh *Shell) task(pid string) (*kernel.Task, error) {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 || strconv.Itoa(n) != pid {
		return nil, errNoEnt
	}
	t := sh.k.FindTask(n)
	if t == nil {
		return nil, errNoEnt
	}
	return t, nil
}

// ls lists a directory, one name a line, sorted (as ls does when its
// output is not a terminal); given a file, it prints the file's name.
func (sh *Shell) ls(args []string, out *bytes.Buffer) error {
	if len(args) > 1 {
		return errors.New("usage: ls [DIR]")
	}
	dir := "/"
	if len(args) == 1 {
		dir = args[0]
	}
	names, err := sh.listDir(absPath(dir))
	if errors.Is(err, errNoDir) {
		if _, ferr := sh.readFile(absPath(dir)); ferr == nil {
			out.WriteString(dir + "\n")
			return nil
		}
		err = errNoEnt
	}
	if err != nil {
		return fmt.Errorf("cannot access '%s': %v", dir, err)
	}
	for _, n := range names {
		out.WriteString(n + "\n")
	}
	return nil
}

// listDir returns the names in directory p (absolute, clean), or errNoDir.
func (sh *Shell) listDir(p string) ([]string, error) {
	set := map[string]bool{}
	// Directories that hold a file of Options.Files or of procFiles.
	for _, files := range []map[string]func(*kernel.Kernel) string{sh.files, procFiles} {
		for f := range files {
			if rest, ok := strings.CutPrefix(f, strings.TrimSuffix(p, "/")+"/"); ok {
				set[strings.SplitN(rest, "/", 2)[0]] = true
			}
		}
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	ld := module.Loader(sh.k, nil)
	switch {
	case p == "/":
		set["proc"], set["sys"] = true, true
	case p == "/proc":
		for _, t := range sh.k.Tasks() {
			if !t.IsIdle() {
				set[strconv.Itoa(t.PID())] = true
			}
		}
	case len(parts) == 2 && parts[0] == "proc":
		if _, err := sh.task(parts[1]); err == nil {
			set["comm"], set["status"] = true, true
		}
	case p == "/sys":
		set["module"] = true
	case p == "/sys/module":
		for _, m := range ld.Modules() {
			set[m.Name()] = true
		}
	case len(parts) == 3 && parts[0] == "sys" && parts[1] == "module":
		if ld.Find(parts[2]) != nil {
			set["parameters"] = true
		}
	case len(parts) == 4 && parts[0] == "sys" && parts[1] == "module" && parts[3] == "parameters":
		if ld.Find(parts[2]) != nil {
			set["."] = true // the directory exists, even if empty
			for _, n := range ld.ParamNames(parts[2]) {
				set[n] = true
			}
		}
	}
	if len(set) == 0 {
		return nil, errNoDir
	}
	delete(set, ".")
	names := sortedKeys(set)
	if p == "/proc" { // ls sorts the pids as names; list them by number first, as ls -v would
		sort.SliceStable(names, func(i, j int) bool {
			a, aerr := strconv.Atoi(names[i])
			b, berr := strconv.Atoi(names[j])
			if aerr == nil && berr == nil {
				return a < b
			}
			return aerr == nil && berr != nil
		})
	}
	return names, nil
}

// procModules is /proc/modules (kernel/module/procfs.c m_show): name,
// size, use count, users ("-": none), state, address (hidden, as for a
// reader without CAP_SYSLOG) and the taint flags with the state's + or -.
// Difference: the size is 0 (kdefer has no module image).
func procModules(k *kernel.Kernel) string {
	var b strings.Builder
	for _, m := range module.Loader(k, nil).Modules() {
		fmt.Fprintf(&b, "%s 0 %d - %s 0x0000000000000000%s\n", m.Name(), m.Refcount(), m.State(), moduleFlags(m))
	}
	return b.String()
}

// moduleFlags is module_flags(): " (O)", " (O+)" while loading, " (O-)"
// while unloading.
func moduleFlags(m *module.Module) string {
	var f []byte
	if m.Taints()&kernel.TaintOOT != 0 {
		f = append(f, 'O')
	}
	switch m.State() {
	case module.StateComing:
		f = append(f, '+')
	case module.StateGoing:
		f = append(f, '-')
	}
	if len(f) == 0 {
		return ""
	}
	return " (" + string(f) + ")"
}

// lsmod is kmod's lsmod: /proc/modules as a table. Difference: the sizes
// are 0.
func (sh *Shell) lsmod(args []string, out *bytes.Buffer) error {
	if len(args) > 0 {
		return errors.New("usage: lsmod")
	}
	fmt.Fprintf(out, "%-19s %8s  %s\n", "Module", "Size", "Used by")
	for _, m := range module.Loader(sh.k, nil).Modules() {
		fmt.Fprintf(out, "%-19s %8d  %d\n", m.Name(), 0, m.Refcount())
	}
	return nil
}

// dmesg prints the kernel log's records, oldest first, as dmesg does
// ("[    0.448000] text"); -t leaves the timestamps out. The line being
// continued (pr_cont) is not shown until it is complete, as in the kernel.
func (sh *Shell) dmesg(args []string, out *bytes.Buffer) error {
	stamps := true
	for _, a := range args {
		switch a {
		case "-t", "--notime":
			stamps = false
		default:
			return fmt.Errorf("unsupported option %q (dmesg here takes -t only)", a)
		}
	}
	recs, _ := sh.k.Log().Records(0)
	for _, rec := range recs {
		if stamps {
			out.WriteString(printk.FormatDmesg(rec))
		} else {
			out.WriteString(rec.Text)
		}
		out.WriteByte('\n')
	}
	return nil
}

// echo is the shell's echo, with one redirection: `echo [-n] WORDS... >
// FILE` writes the words (and a newline, unless -n) to FILE, which must be
// a writable /sys/module/MOD/parameters/NAME (procfs.SetModuleParam, from
// the process context of swapper/0: the console is no task of the kernel).
// Errors are worded as bash words them: "FILE: Permission denied" when
// the permission has no write bit or the file is a /proc view, "FILE: No
// such file or directory", and "write error: Invalid argument" (or the
// setter's other errno) when the value is refused. Without a redirection
// it prints the words.
func (sh *Shell) echo(args []string, out *bytes.Buffer) error {
	newline := true
	if len(args) > 0 && args[0] == "-n" {
		newline, args = false, args[1:]
	}
	var words []string
	target := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == ">":
			if i+1 >= len(args) {
				return errors.New("syntax error near unexpected token `newline'")
			}
			target, i = args[i+1], i+1
		case strings.HasPrefix(a, ">"):
			target = a[1:]
		default:
			words = append(words, a)
		}
	}
	text := strings.Join(words, " ")
	if newline {
		text += "\n"
	}
	if target == "" {
		out.WriteString(text)
		return nil
	}
	p := absPath(target)
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) != 5 || parts[0] != "sys" || parts[1] != "module" || parts[3] != "parameters" {
		if _, err := sh.readFile(p); err == nil || errors.Is(err, errAcces) {
			return fmt.Errorf("%s: %v", target, errAcces) // the /proc views are read-only
		} else if errors.Is(err, errIsDir) {
			return fmt.Errorf("%s: %v", target, errIsDir)
		}
		return fmt.Errorf("%s: %v", target, errNoEnt) // sysfs and procfs create no files
	}
	err := procfs.SetModuleParam(sh.k.IdleCtx(0), parts[2], parts[4], text)
	var errno kernel.Errno
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kernel.ENOENT):
		return fmt.Errorf("%s: %v", target, errNoEnt)
	case errors.Is(err, kernel.EACCES):
		return fmt.Errorf("%s: %v", target, errAcces)
	case errors.As(err, &errno):
		return fmt.Errorf("write error: %s", errno.Error())
	}
	return fmt.Errorf("write error: %v", err)
}
