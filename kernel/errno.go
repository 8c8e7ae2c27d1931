package kernel

import (
	"errors"
	"fmt"
)

// Errno is a kernel error number, returned negated by kernel functions (the
// kernel's -EINVAL is Errno EINVAL here). It implements error with the
// message glibc's strerror gives, so that a userspace app can perror it
// exactly as the C demos do.
type Errno int

// The error numbers kdefer uses (include/uapi/asm-generic/errno-base.h,
// errno.h). The values are the x86-64 Linux ones.
const (
	EPERM       Errno = 1
	ENOENT      Errno = 2
	ESRCH       Errno = 3
	EINTR       Errno = 4
	EIO         Errno = 5
	ENXIO       Errno = 6
	E2BIG       Errno = 7
	EBADF       Errno = 9
	EAGAIN      Errno = 11
	ENOMEM      Errno = 12
	EACCES      Errno = 13
	EFAULT      Errno = 14
	EBUSY       Errno = 16
	EEXIST      Errno = 17
	ENODEV      Errno = 19
	EINVAL      Errno = 22
	ENOTTY      Errno = 25
	ENOSPC      Errno = 28
	ERANGE      Errno = 34
	EDEADLK     Errno = 35
	ENOSYS      Errno = 38
	EBADRQC     Errno = 56
	ETIME       Errno = 62
	ETIMEDOUT   Errno = 110
	EALREADY    Errno = 114
	ERESTARTSYS Errno = 512 // kernel-internal, never seen by userspace
)

var errnoInfo = map[Errno][2]string{
	EPERM:       {"EPERM", "Operation not permitted"},
	ENOENT:      {"ENOENT", "No such file or directory"},
	ESRCH:       {"ESRCH", "No such process"},
	EINTR:       {"EINTR", "Interrupted system call"},
	EIO:         {"EIO", "Input/output error"},
	ENXIO:       {"ENXIO", "No such device or address"},
	E2BIG:       {"E2BIG", "Argument list too long"},
	EBADF:       {"EBADF", "Bad file descriptor"},
	EAGAIN:      {"EAGAIN", "Resource temporarily unavailable"},
	ENOMEM:      {"ENOMEM", "Cannot allocate memory"},
	EACCES:      {"EACCES", "Permission denied"},
	EFAULT:      {"EFAULT", "Bad address"},
	EBUSY:       {"EBUSY", "Device or resource busy"},
	EEXIST:      {"EEXIST", "File exists"},
	ENODEV:      {"ENODEV", "No such device"},
	EINVAL:      {"EINVAL", "Invalid argument"},
	ENOTTY:      {"ENOTTY", "Inappropriate ioctl for device"},
	ENOSPC:      {"ENOSPC", "No space left on device"},
	ERANGE:      {"ERANGE", "Numerical result out of range"},
	EDEADLK:     {"EDEADLK", "Resource deadlock avoided"},
	ENOSYS:      {"ENOSYS", "Function not implemented"},
	EBADRQC:     {"EBADRQC", "Invalid request code"},
	ETIME:       {"ETIME", "Timer expired"},
	ETIMEDOUT:   {"ETIMEDOUT", "Connection timed out"},
	EALREADY:    {"EALREADY", "Operation already in progress"},
	ERESTARTSYS: {"ERESTARTSYS", "Interrupted system call"},
}

// Error returns glibc's strerror text for e.
func (e Errno) Error() string {
	if in, ok := errnoInfo[e]; ok {
		return in[1]
	}
	return fmt.Sprintf("Unknown error %d", int(e))
}

// Name returns the symbolic name, e.g. "ENOTTY".
func (e Errno) Name() string {
	if in, ok := errnoInfo[e]; ok {
		return in[0]
	}
	return fmt.Sprintf("E%d", int(e))
}

// AsErrno extracts the Errno from err (wrapped or not). It returns 0, false
// when err carries no Errno.
func AsErrno(err error) (Errno, bool) {
	var e Errno
	if errors.As(err, &e) {
		return e, true
	}
	return 0, false
}
