#!/usr/bin/env bash
# install-interop.sh: installs what the interop suite (interop/) needs to run REAL corosync 3.1.x
# nodes beside gototem nodes: Debian's corosync, the libcpg/libquorum/libvotequorum/libcmap headers
# for the C clients, gcc, iproute2 (namespaces), nftables and tcpdump.
#
# Idempotent: installs only what is missing, and does nothing at all when everything is there.
# Needs root and apt-get; otherwise it says so and exits 0, and the interop tests skip with a
# message of their own. Under CI=true anything still missing at the end is a failure (exit 1):
# CI must never pass on suites that could not run.
#
# The system corosync service must never run: Debian's postinst would start corosync.service in
# the root network namespace, where it would form a ring with nobody and hold /run/corosync.pid.
# A policy-rc.d that forbids every service start is put in place for the install (only if there
# is none already; it is removed afterwards), and any corosync that appeared in the root network
# namespace during the install, and only such a one, is stopped by its PID.
set -euo pipefail

log() { echo "install-interop: $*" >&2; }

# Binaries and headers the suite uses, and the Debian package that provides each.
declare -A want=(
	[/usr/sbin/corosync]=corosync
	[/usr/sbin/corosync-cmapctl]=corosync
	[/usr/sbin/corosync-quorumtool]=corosync
	[/usr/include/corosync/cpg.h]=libcpg-dev
	[/usr/include/corosync/corotypes.h]=libcorosync-common-dev
	[/usr/include/corosync/quorum.h]=libquorum-dev
	[/usr/include/corosync/votequorum.h]=libvotequorum-dev
	[/usr/include/corosync/cmap.h]=libcmap-dev
	[/usr/include/qb/qbipcc.h]=libqb-dev
	[/usr/bin/gcc]=gcc
	[/usr/include/stdio.h]=libc6-dev
	[/usr/bin/pkg-config]=pkg-config
	[/usr/sbin/ip]=iproute2
	[/usr/sbin/nft]=nftables
	[/usr/bin/tcpdump]=tcpdump
	[/usr/bin/unshare]=util-linux
	[/usr/bin/timeout]=coreutils
	# corosync's client IPC suites (issue 13): Pacemaker, its CLI, qdevice/qnetd, resource agents
	[/usr/sbin/pacemakerd]=pacemaker
	[/usr/sbin/crm_mon]=pacemaker-cli-utils
	[/usr/sbin/corosync-qdevice]=corosync-qdevice
	[/usr/bin/corosync-qnetd]=corosync-qnetd
	[/usr/lib/ocf/resource.d/heartbeat/IPaddr2]=resource-agents
)

missing=()
for f in "${!want[@]}"; do
	# /usr/sbin and /sbin, /usr/bin and /bin are the same on merged-/usr systems, not on others
	[[ -e $f || -e ${f#/usr} ]] && continue
	p=${want[$f]}
	[[ " ${missing[*]-} " == *" $p "* ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	log "everything is installed ($(corosync -v 2>/dev/null | head -n 1 || echo 'corosync version unknown'))"
	exit 0
fi
if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
	log "missing ${missing[*]} but not root with apt-get: the interop tests will skip"
	[[ ${CI-} == true ]] && { log "CI=true: that is a failure"; exit 1; }
	exit 0
fi

root_netns=$(readlink /proc/self/ns/net)
# corosync processes in the root network namespace; those running before the install are not ours.
root_corosyncs() {
	local p
	for p in $(pgrep -x corosync 2>/dev/null || true); do
		[[ $(readlink "/proc/$p/ns/net" 2>/dev/null) == "$root_netns" ]] && echo "$p"
	done
	return 0
}
before=" $(root_corosyncs | tr '\n' ' ') "

tmp_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
	printf '#!/bin/sh\n# install-interop.sh: no service may start during the install\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	tmp_policy=1
fi
cleanup() { ((tmp_policy)) && rm -f /usr/sbin/policy-rc.d; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
log "installing ${missing[*]}"
# Another apt run on the same machine holds the dpkg lock for a while: wait for it (bounded).
ok=1
if ! apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null ||
	! apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
	ok=0 # the interop tests check for what they need and skip with a message of their own
fi

# A system that ignores policy-rc.d (systemd as PID 1 with a preset) may still have started it.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
	systemctl disable --now corosync.service pacemaker.service corosync-qdevice.service corosync-qnetd.service >/dev/null 2>&1 || true
fi
for p in $(root_corosyncs); do
	[[ $before == *" $p "* ]] && continue
	log "stopping corosync pid $p that the package install started in the root namespace"
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 1 50); do [[ -e /proc/$p ]] || break; sleep 0.1; done
	[[ -e /proc/$p ]] && kill -KILL "$p" 2>/dev/null || true
done
if ((ok)); then
	log "installed: $(corosync -v 2>/dev/null | head -n 1)"
else
	log "could not install ${missing[*]}: the interop tests that need them will skip"
	[[ ${CI-} == true ]] && { log "CI=true: that is a failure"; exit 1; }
fi
