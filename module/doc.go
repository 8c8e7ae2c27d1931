// Package module is kdefer's loadable modules and character devices: module
// definitions with typed parameters, a per-kernel loader (insmod, rmmod,
// lsmod, /sys/module/<mod>/parameters), ioctl command numbers, misc devices,
// char device regions and cdevs, device nodes, and the system calls a user
// task makes on them (open, read, write, ioctl, poll, close).
//
// Kernel counterparts: kernel/module/main.c (load_module, do_init_module,
// delete_module, try_module_get/module_put, print_modules), kernel/params.c
// (parse_args, parse_one, param_set_*/param_get_*, param_attr_store),
// lib/cmdline.c (next_arg), lib/kstrtox.c (kstrtoull, kstrtoll, kstrtobool),
// include/linux/moduleparam.h (module_param, VERIFY_OCTAL_PERMISSIONS),
// drivers/char/misc.c (misc_register, misc_deregister, misc_open),
// fs/char_dev.c (register_chrdev_region, alloc_chrdev_region,
// __register_chrdev, cdev_add, cdev_del, chrdev_open, find_dynamic_major),
// drivers/base/core.c (dev_printk), fs/libfs.c (simple_read_from_buffer),
// fs/ioctl.c (vfs_ioctl), include/uapi/asm-generic/ioctl.h (_IOC and
// friends), and the kmod tools' messages (insmod, rmmod).
//
// # Modules
//
// A module is an [Info] value: modinfo strings and a New function that
// allocates an [Instance] and binds its parameters ([Params]) to the
// instance's fields, as module_param() binds static variables. Nothing is
// global: a [Registry] holds the definitions a program offers, and each
// kernel gets its own [ModLoader] ([Loader]), so two kernels in one process
// load the same definition into two independent instances.
//
// [ModLoader.Insmod] follows load_module: the module joins the modules list
// in the Coming state ("(O+)" in "Modules linked in:"), its arguments are
// parsed with the kernel's messages, then Init runs in process context of
// the insmod task. [ModLoader.Rmmod] refuses a module with open files (EBUSY,
// "Module X is in use"), then runs Exit in the rmmod task. The errors are
// [Error] values whose text is the line insmod or rmmod prints.
//
// # Devices and system calls
//
// Drivers register a [MiscDevice] (major 10; its node appears as
// /dev/<name>) or reserve numbers with [RegisterChrdevRegion] and add a
// [Cdev]; a node for them is made with [Mknod]. User tasks call [Open] and
// the [Fd] methods. The application never shares memory with the driver:
// Read fills a kernel buffer that is then copied out, Write hands the
// driver a copy, and an ioctl's [UserArg] reaches the driver as a kernel
// copy that it accesses with CopyFromUser and CopyToUser, copied back when
// the ioctl returns. So the application could live in another OS process,
// with a transport carrying the bytes.
//
// A device registered (or a cdev added) while a module's Init runs belongs
// to that module, as if its fops had .owner = THIS_MODULE: each open file
// holds a reference on the module.
//
// # Deliberate differences from the kernel
//
//   - Module ownership of a device is found from the task: the module whose
//     Init is running on the registering task owns it. A device registered
//     from another task (a kthread or work item of the module) has no owner
//     and does not pin the module.
//   - Insmod joins its arguments with spaces, as insmod(8) builds the option
//     string from its argv: Insmod(c, "m", "name=a b") sets name to "a" and
//     warns about an unknown parameter "b"; pass "name=\"a b\"" instead.
//   - The unknown-parameter handler accepts "async_probe" and "dyndbg"
//     silently (there is no dynamic debug: pr_debug and dev_dbg always
//     print).
//   - Array, hexint, ullong and callback parameters (module_param_array,
//     module_param_cb) are not provided; neither are param_check_unsafe and
//     parameter levels.
//   - Every module counts as out-of-tree (there is no "intree" modinfo):
//     loading taints the kernel 'O', the first load prints "<mod>: loading
//     out-of-tree module taints kernel." and "Modules linked in:" shows
//     "name(O)". There is no module signature check (so no 'E' taint and
//     no "module verification failed" line), no vermagic, no symbol
//     resolution, and no request_module: a module not in the registry is
//     ENOENT.
//   - A second Insmod of a module that is still loading fails with EEXIST
//     at once; the kernel waits for the first load to finish.
//   - Misc devices and cdevs a module leaves registered after Exit (or a
//     failed Init) are removed with a WARN; the kernel would oops on the
//     next open. Char device regions stay, as in the kernel (a reload that
//     registers the same region then fails with EBUSY).
//   - Dynamic misc minors are handed out from 127 downward, then from 256
//     upward (Linux 6.1's DYNAMIC_MINORS of 128), skipping minors in use;
//     the first misc device of a kernel gets 127. A deregistered dynamic
//     device gets Minor reset to MiscDynamicMinor.
//   - Device nodes live in a flat per-kernel table keyed by clean absolute
//     paths; there are no directories, permissions or owners (every task
//     is root). devtmpfs creates and removes the nodes of misc devices.
//   - File descriptors belong to the task that opened them (every task is
//     its own process); they are numbered from 3. A task that exits
//     without closing its files has them closed when its function returns
//     (exit_files): Release runs on the exiting task, lowest descriptor
//     first, and the module references are dropped.
//   - Poll is a single vfs_poll query; there is no poll_table, so a
//     blocking poll(2) or select(2) is up to the caller.
//   - Driver errors that are not a kernel.Errno reach the application as
//     EIO; ERESTARTSYS and its siblings as EINTR. Read, Write and Ioctl
//     return -1 on error, as libc does. There is no llseek, mmap, fasync or
//     compat_ioctl, and no generic ioctls (FIONBIO, FIOCLEX, …) in front of
//     the driver's.
//   - The dev_*() helpers take a [Device], which holds only what dev_printk
//     prints: the driver (or class) string and the device name.
package module
