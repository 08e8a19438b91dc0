package anomaly

import (
	"syscall"
	"unsafe"
)

// adviseHuge asks Linux to back the slots with transparent huge pages: with
// 4 KiB pages, a set of 100 000 series spans 22 000 pages and nearly every
// update of a series would miss the TLB as well as the cache. It is only
// advice; an error leaves the memory as it was.
func adviseHuge(slots []slot) {
	if len(slots) == 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&slots[0])), len(slots)*SlotBytes)
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
}
