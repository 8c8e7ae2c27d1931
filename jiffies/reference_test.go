package jiffies

import (
	"math"
	"math/big"
)

// This file is an independent model of the kernel's conversions, written
// with math/big straight from the C expressions in include/linux/jiffies.h
// and kernel/time/time.c for a 64-bit kernel. Every place where C arithmetic
// would wrap is an explicit wrap64 (unsigned long, u64) or wrap32 (unsigned
// int); everything else is exact. Where the kernel uses timeconst.bc's
// multiply-and-shift approximations, the model uses the exact ceiling they
// stand for, so the constants are checked rather than copied.

// allHZ returns every valid tick rate.
func allHZ() []HZ { return []HZ{HZ100, HZ250, HZ300, HZ1000} }

func bigU(x uint64) *big.Int { return new(big.Int).SetUint64(x) }

func bigMul(a, b *big.Int) *big.Int { return new(big.Int).Mul(a, b) }

func bigAdd(a, b *big.Int) *big.Int { return new(big.Int).Add(a, b) }

// floorDiv returns a/b for non-negative a and positive b.
func floorDiv(a, b *big.Int) *big.Int { return new(big.Int).Quo(a, b) }

// ceilDiv returns ceil(a/b) for non-negative a and positive b.
func ceilDiv(a, b *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(a, b, new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

func wrap(x *big.Int, bits uint) *big.Int {
	return new(big.Int).Mod(x, new(big.Int).Lsh(big.NewInt(1), bits))
}

// wrap64 is C's conversion to unsigned long / u64.
func wrap64(x *big.Int) *big.Int { return wrap(x, 64) }

// wrap32 is C's conversion to unsigned int.
func wrap32(x *big.Int) uint32 { return uint32(wrap(x, 32).Uint64()) }

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ratio returns the reduced NUM/DEN of per/hz, as timeconst.bc prints
// HZ_TO_MSEC_NUM/DEN and HZ_TO_USEC_NUM/DEN. When hz divides per, DEN is 1
// and the kernel's divisible-case formula (per/HZ)*j is the same expression.
func ratio(per uint64, hz HZ) (num, den *big.Int) {
	g := gcd(per, uint64(hz))
	return bigU(per / g), bigU(uint64(hz) / g)
}

// refJiffiesToMsecs: DIV_ROUND_UP(j * HZ_TO_MSEC_NUM, HZ_TO_MSEC_DEN) in
// unsigned long, returned as unsigned int.
func refJiffiesToMsecs(hz HZ, j uint64) uint32 {
	num, den := ratio(msecPerSec, hz)
	prod := wrap64(bigMul(bigU(j), num))
	sum := wrap64(bigAdd(prod, new(big.Int).Sub(den, big.NewInt(1))))
	return wrap32(floorDiv(sum, den))
}

// refJiffiesToUsecs: (j * HZ_TO_USEC_NUM) / HZ_TO_USEC_DEN in unsigned long,
// returned as unsigned int.
func refJiffiesToUsecs(hz HZ, j uint64) uint32 {
	num, den := ratio(usecPerSec, hz)
	return wrap32(floorDiv(wrap64(bigMul(bigU(j), num)), den))
}

// refJiffiesToNsecs: (u64)jiffies_to_usecs(j) * NSEC_PER_USEC.
func refJiffiesToNsecs(hz HZ, j uint64) uint64 {
	return wrap64(bigMul(bigU(uint64(refJiffiesToUsecs(hz, j))), bigU(nsecPerUsec))).Uint64()
}

// refMsecsToJiffies: (int)m < 0 means infinite; otherwise ceil(m*HZ/1000).
func refMsecsToJiffies(hz HZ, m uint32) uint64 {
	if m > math.MaxInt32 {
		return MaxJiffyOffset
	}
	return ceilDiv(bigMul(bigU(uint64(m)), bigU(uint64(hz))), bigU(msecPerSec)).Uint64()
}

// refUsecsToJiffies: u > jiffies_to_usecs(MAX_JIFFY_OFFSET) is clamped;
// otherwise ceil(u*HZ/1000000).
func refUsecsToJiffies(hz HZ, u uint32) uint64 {
	if u > refJiffiesToUsecs(hz, MaxJiffyOffset) {
		return MaxJiffyOffset
	}
	return ceilDiv(bigMul(bigU(uint64(u)), bigU(uint64(hz))), bigU(usecPerSec)).Uint64()
}

// refNsecsToJiffies64: n / (NSEC_PER_SEC/HZ) when HZ divides NSEC_PER_SEC,
// else the generic (u64)(n*9) / ((9*NSEC_PER_SEC + HZ/2) / HZ).
func refNsecsToJiffies64(hz HZ, n uint64) uint64 {
	h := uint64(hz)
	if nsecPerSec%h == 0 {
		return floorDiv(bigU(n), bigU(nsecPerSec/h)).Uint64()
	}
	div := floorDiv(bigU(9*nsecPerSec+h/2), bigU(h))
	return floorDiv(wrap64(bigMul(bigU(n), big.NewInt(9))), div).Uint64()
}

// refSecsToJiffies: (unsigned long)(s * HZ).
func refSecsToJiffies(hz HZ, s uint64) uint64 {
	return wrap64(bigMul(bigU(s), bigU(uint64(hz)))).Uint64()
}

// timeconst.bc, transcribed to math/big.

// bcFmul is fmul(b,n,d) = (2^b*n + d-1) / d.
func bcFmul(b uint, n, d uint64) *big.Int {
	x := new(big.Int).Lsh(bigU(n), b)
	return floorDiv(x.Add(x, bigU(d-1)), bigU(d))
}

// bcFadj is fadj(b,n,d): d = d/gcd(n,d); 2^b*(d-1)/d.
func bcFadj(b uint, n, d uint64) *big.Int {
	d /= gcd(n, d)
	return floorDiv(new(big.Int).Lsh(bigU(d-1), b), bigU(d))
}

// bcFmuls is fmuls(b,n,d): the smallest shift s with fmul(s,n,d) >= 2^(b-1).
func bcFmuls(b uint, n, d uint64) uint {
	limit := new(big.Int).Lsh(big.NewInt(1), b-1)
	for s := uint(0); ; s++ {
		if bcFmul(s, n, d).Cmp(limit) >= 0 {
			return s
		}
	}
}

// bcTimeconst computes what timeconst.bc prints for hz.
func bcTimeconst(hz HZ) timeconst {
	h := uint64(hz)
	ms := bcFmuls(32, h, msecPerSec)
	us := bcFmuls(32, h, usecPerSec)
	gm, gu := gcd(h, msecPerSec), gcd(h, usecPerSec)
	return timeconst{
		msecToHZMul32: bcFmul(ms, h, msecPerSec).Uint64(),
		msecToHZAdj32: bcFadj(ms, h, msecPerSec).Uint64(),
		msecToHZShr32: ms,
		usecToHZMul32: bcFmul(us, h, usecPerSec).Uint64(),
		usecToHZAdj32: bcFadj(us, h, usecPerSec).Uint64(),
		usecToHZShr32: us,
		hzToMsecNum:   msecPerSec / gm,
		hzToMsecDen:   h / gm,
		hzToUsecNum:   usecPerSec / gu,
		hzToUsecDen:   h / gu,
	}
}

// edgeU32 and edgeU64 are the inputs every table test runs through.
func edgeU32() []uint32 {
	return []uint32{
		0, 1, 2, 3, 4, 5, 9, 10, 11, 99, 100, 101, 999, 1000, 1001,
		3333, 3334, 9999, 10000, 10001, 999999, 1000000, 1000001,
		1431649098, 1431649099, 0x7ffffffe, 0x7fffffff, 0x80000000, 0x80000001,
		4294947296, 4294947297, 4294959296, 4294959297, 4294965296, 4294965297,
		4294667296, 4294892296, 4294877296, 4294937296,
		math.MaxUint32 - 1, math.MaxUint32,
	}
}

func edgeU64() []uint64 {
	out := []uint64{
		0, 1, 2, 3, 4, 99, 100, 101, 299, 300, 301, 999, 1000, 1001,
		3333333, 3333334, 4000000, 10000000, 1e9 - 1, 1e9, 1e9 + 1,
		0x7fffffff, 0x80000000, math.MaxUint32, math.MaxUint32 + 1,
		4294667296, 4294892296, 4294877296, 4294937296,
		math.MaxUint64 / 10000, math.MaxUint64/10000 + 1,
		math.MaxUint64 / 10, math.MaxUint64/10 + 1,
		math.MaxUint64 / 9, math.MaxUint64/9 + 1,
		MaxJiffyOffset, MaxJiffyOffset + 1, math.MaxInt64, math.MaxInt64 + 1,
		math.MaxUint64 - 1, math.MaxUint64,
	}
	for _, v := range edgeU32() {
		out = append(out, uint64(v))
	}
	return out
}
