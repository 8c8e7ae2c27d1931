package module

import "fmt"

// The ioctl command layout of include/uapi/asm-generic/ioctl.h (x86, arm64,
// riscv): from the least significant bit, an 8-bit number, an 8-bit type
// ("magic"), a 14-bit argument size and a 2-bit direction.
const (
	IOCNrBits   = 8  // _IOC_NRBITS
	IOCTypeBits = 8  // _IOC_TYPEBITS
	IOCSizeBits = 14 // _IOC_SIZEBITS
	IOCDirBits  = 2  // _IOC_DIRBITS

	IOCNrMask   = 1<<IOCNrBits - 1   // _IOC_NRMASK
	IOCTypeMask = 1<<IOCTypeBits - 1 // _IOC_TYPEMASK
	IOCSizeMask = 1<<IOCSizeBits - 1 // _IOC_SIZEMASK
	IOCDirMask  = 1<<IOCDirBits - 1  // _IOC_DIRMASK

	IOCNrShift   = 0                          // _IOC_NRSHIFT
	IOCTypeShift = IOCNrShift + IOCNrBits     // _IOC_TYPESHIFT
	IOCSizeShift = IOCTypeShift + IOCTypeBits // _IOC_SIZESHIFT
	IOCDirShift  = IOCSizeShift + IOCSizeBits // _IOC_DIRSHIFT
)

// Directions of an ioctl's data transfer, seen from the application: IOCWrite
// means the application writes to the kernel (the driver copies from user).
const (
	IOCNone  = 0 // _IOC_NONE
	IOCWrite = 1 // _IOC_WRITE
	IOCRead  = 2 // _IOC_READ
)

// IOC is _IOC(dir, type, nr, size): it packs an ioctl command number. A
// field too wide for its bits panics, as _IOC_TYPECHECK and the kernel's
// BUILD_BUG_ON stop such a definition from compiling.
func IOC(dir, typ, nr, size uint32) uint32 {
	if dir > IOCDirMask || typ > IOCTypeMask || nr > IOCNrMask || size > IOCSizeMask {
		panic(fmt.Sprintf("module: IOC(%d, %#x, %d, %d): field out of range", dir, typ, nr, size))
	}
	return dir<<IOCDirShift | typ<<IOCTypeShift | nr<<IOCNrShift | size<<IOCSizeShift
}

// IO is _IO(type, nr): a command without an argument buffer (the argument,
// if any, is passed by value).
func IO(typ, nr uint32) uint32 { return IOC(IOCNone, typ, nr, 0) }

// IOR is _IOR(type, nr, size): the driver writes size bytes to the
// application (copy_to_user). In C the third argument is a type; here it is
// its sizeof.
func IOR(typ, nr, size uint32) uint32 { return IOC(IOCRead, typ, nr, size) }

// IOW is _IOW(type, nr, size): the driver reads size bytes from the
// application (copy_from_user).
func IOW(typ, nr, size uint32) uint32 { return IOC(IOCWrite, typ, nr, size) }

// IOWR is _IOWR(type, nr, size): data flows both ways.
func IOWR(typ, nr, size uint32) uint32 { return IOC(IOCRead|IOCWrite, typ, nr, size) }

// IOCDir is _IOC_DIR(cmd).
func IOCDir(cmd uint32) uint32 { return cmd >> IOCDirShift & IOCDirMask }

// IOCType is _IOC_TYPE(cmd), the "magic" byte.
func IOCType(cmd uint32) uint32 { return cmd >> IOCTypeShift & IOCTypeMask }

// IOCNr is _IOC_NR(cmd).
func IOCNr(cmd uint32) uint32 { return cmd >> IOCNrShift & IOCNrMask }

// IOCSize is _IOC_SIZE(cmd).
func IOCSize(cmd uint32) uint32 { return cmd >> IOCSizeShift & IOCSizeMask }
