// Package services owns what corosync's executive runs above totempg and what real corosync
// nodes require of every ring member: the synchronization engine (group "sync": SERVICE_BUILD and
// BARRIER rounds after each regular configuration) and CPG, the closed process group service
// (service 2 in group "a"), whose replicated process records are gototem's process groups.
//
// Like srp it is pure: no goroutines, clock or I/O. Its inputs are configurations and message
// bodies delivered in total order; its outputs are message bodies to multicast and events. It
// does not frame groups or fragment (totempg does) and it does not compute quorum (quorum does;
// it joins the sync as a Participant).
//
// The behaviour mirrors corosync 3.1.7 exactly, quirks included
// (docs/reference/services-sync.md): real nodes wait forever for a sync phase a member does
// not answer, so a gototem node answers every phase exactly once per ring.
package services
