package wait

// links are the prev/next pointers of a node of an intrusive doubly linked
// list (the kernel's struct list_head inside a wait-queue entry).
type links[T any] struct{ prev, next *T }

// dlist is the head of an intrusive doubly linked list of T.
type dlist[T any] struct{ head, tail *T }

// node is a pointer to a list element that exposes its links.
type node[T any] interface {
	*T
	lnk() *links[T]
}

// pushFront is list_add: n becomes the first element.
func pushFront[T any, P node[T]](l *dlist[T], n P) {
	nl := n.lnk()
	nl.prev, nl.next = nil, l.head
	if l.head != nil {
		P(l.head).lnk().prev = n
	} else {
		l.tail = n
	}
	l.head = n
}

// pushBack is list_add_tail: n becomes the last element.
func pushBack[T any, P node[T]](l *dlist[T], n P) {
	nl := n.lnk()
	nl.prev, nl.next = l.tail, nil
	if l.tail != nil {
		P(l.tail).lnk().next = n
	} else {
		l.head = n
	}
	l.tail = n
}

// unlink is list_del_init: n, which is on l, leaves it.
func unlink[T any, P node[T]](l *dlist[T], n P) {
	nl := n.lnk()
	if nl.prev != nil {
		P(nl.prev).lnk().next = nl.next
	} else {
		l.head = nl.next
	}
	if nl.next != nil {
		P(nl.next).lnk().prev = nl.prev
	} else {
		l.tail = nl.prev
	}
	nl.prev, nl.next = nil, nil
}
