# SPDX-License-Identifier: GPL-2.0
"""QEMU lane: stress scenarios (many migrations, a cancel in every phase,
the downtime QEMU builds from the driver's stop-copy size).

Imported by qmp_migrate.py (which binds itself in with bind()), standard
library only.  Each scenario drives the same Lane as the others and prints
the same "ok - NAME # detail" / "not ok - NAME" lines.

    pingpong-n     --hops N (default 20) migrations in a row, A -> B ->
                   A ..., one test per hop (completed, the device moved,
                   the destination guest makes progress) with its total
                   time and downtime as metrics, then the guest verdict
    cancel-phases  migrate_cancel in each QEMU 10 status of --phases
                   (setup, active, pre-switchover, device), each held
                   deterministically (see sc_cancel_phases), then a
                   migration of the same guest that must complete; after
                   each cancel the source runs, its guest progresses and
                   the driver's debugfs says the function is RUNNING
    downtime-size  the driver's stop_copy_length (VFIO_DEVICE_FEATURE_
                   MIG_DATA_SIZE, QEMU's vfio_state_pending_exact trace)
                   at QEMU's switchover decision against the bytes QEMU
                   read from the data_fd in STOP_COPY (an idle device; a
                   busy one frozen before QEMU asks, then one running),
                   and a downtime-limit QEMU must meet
"""

import os
import re
import signal
import socket
import threading
import time

import scenarios_qemu10 as q10

Q = None        # the qmp_migrate module (bind())


def bind(mod):
    global Q
    Q = mod


def add_options(ap):
    ap.add_argument("--hops", type=int, default=20,
                    help="pingpong-n: migrations in a row")
    ap.add_argument("--phases", default="setup,active,pre-switchover,"
                    "device",
                    help="cancel-phases: the statuses to cancel in")
    ap.add_argument("--hold", type=float, default=3.0,
                    help="cancel-phases: seconds a held phase is kept "
                    "before the cancel (and the stopped destination of "
                    "the device phase before SIGCONT)")
    ap.add_argument("--size-margin", type=int, default=4096,
                    help="downtime-size: bytes stop_copy_length may exceed "
                    "what QEMU read in STOP_COPY (see sc_downtime_size)")
    ap.add_argument("--dt-limit", type=int, default=5000,
                    help="downtime-size: downtime-limit (ms) QEMU must "
                    "meet")


def log(msg):
    Q.log(msg)


# QEMU's trace lines and the device they name: as scenarios_qemu10 reads them.
trace_lines = q10.trace_lines
dev_of = q10.dev_of


def add_traces(opts, names):
    for n in names:
        if n not in opts.trace:
            opts.trace.append(n)


def other(lane, host):
    o = lane.opts
    return o.host_b if host == o.host_a else o.host_a


def letter(lane, host):
    return "A" if host == lane.opts.host_a else "B"


# -- pingpong-n --

def sc_pingpong_n(lane):
    """--hops migrations of one guest, alternately to B and back to A."""
    o = lane.opts
    total = "pingpong-%d" % o.hops
    hops = []
    host = o.host_a
    for i in range(o.hops):
        nxt = other(lane, host)
        hops.append(("hop%02d-%s-to-%s" % (i + 1, letter(lane, host),
                                          letter(lane, nxt)), nxt))
        host = nxt
    lane.plan(*[h for h, _ in hops], *lane.verdicts(total))
    src = lane.start_src(o.host_a)
    rows = []
    for name, host in hops:
        dst = lane.start_dst(host, lane.caps())
        info = lane.migrate_checked(src, dst, name, name)
        rows.append((info.get("total-time", 0), info.get("downtime", 0),
                     info.get("vfio", {}).get("transferred", 0)))
        lane.finish(src)
        src = dst
    tt = sorted(r[0] for r in rows)
    dt = sorted(r[1] for r in rows)
    log("metric: %s hops=%d total-time-ms-min=%d total-time-ms-median=%d "
        "total-time-ms-max=%d downtime-ms-min=%d downtime-ms-median=%d "
        "downtime-ms-max=%d vfio-bytes-sum=%d" % (
            total, len(rows), tt[0], tt[len(tt) // 2], tt[-1], dt[0],
            dt[len(dt) // 2], dt[-1], sum(r[2] for r in rows)))
    # each hop is its own result: the run as a whole is only numbers
    lane.end_guest(src, total)
    lane.finish(src)


# -- cancel-phases --

CANCEL_TRACES = ["vfio_migration_set_device_state", "migration_cleanup",
                 "migration_cancel"]
PHASES = ("setup", "active", "pre-switchover", "device")


def debugfs_status(bdf):
    """The driver's <debugfs>/refaccel_vfio_pci/BDF/status as a dict, or
    None (no debugfs, no such function)."""
    base = "/sys/kernel/debug"
    if not os.path.isdir(base + "/refaccel_vfio_pci"):
        os.system("mount -t debugfs none %s 2>/dev/null" % base)
    try:
        with open("%s/refaccel_vfio_pci/%s/status" % (base, bdf)) as f:
            text = f.read()
    except OSError:
        return None
    return dict(ln.split(": ", 1) for ln in text.splitlines()
                if ": " in ln)


def wait_event(vm, pred, timeout):
    """Read @vm's QMP socket, without sending anything, until an event
    @pred accepts arrives (it stays in vm.qmp.events)."""
    deadline = time.monotonic() + timeout
    while True:
        for e in vm.qmp.events:
            if pred(e):
                return e
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            msg = vm.qmp._read(left)
        except Q.Failure:
            return None
        if "event" in msg:
            vm.qmp.events.append(msg)


def statuses_of(events):
    return [e["data"].get("status") for e in events
            if e["event"] == "MIGRATION"]


class FullListener:
    """A unix socket that accepts nothing and whose backlog is full: the
    connect of an outgoing migration to it blocks, so QEMU stays in setup
    (it connects asynchronously, qio_channel_socket_connect_async())."""

    def __init__(self, path):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ls.bind(path)
        self.ls.listen(0)
        # backlog 0: one connection is queued, the next one waits
        self.filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.filler.connect(path)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.setblocking(False)
        try:
            probe.connect(path)
            self.full = False
        except BlockingIOError:
            self.full = True
        except OSError:
            self.full = False
        probe.close()

    def close(self):
        # the listener first: a connect waiting on it fails (ECONNREFUSED)
        self.ls.close()
        self.filler.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def device_states(src, host, err0):
    """The device states QEMU set on @host since stderr offset @err0."""
    return [re.sub(r".*state ", "", r).strip() for ev, r in
            trace_lines(src.stderr_text()[err0:],
                        ["vfio_migration_set_device_state"])
            if dev_of(r) == host]


def end_dst(lane, name, dst):
    """The destination of a cancelled migration exits on its torn stream;
    one that got the whole stream first (a cancel in device) runs its
    guest and is killed, as is one still up after --boot-timeout."""
    if dst is None:
        return
    deadline = time.monotonic() + lane.opts.boot_timeout
    st = None
    while dst.alive() and time.monotonic() < deadline:
        try:
            st = dst.status()
        except (Q.Failure, OSError):
            st = None
        if st == "running":
            break
        time.sleep(0.5)
    if dst.alive():
        log("%s: destination still up after the cancel (status %s): "
            "killed" % (name, st))
        dst.kill()
    else:
        log("%s: destination exited with %s" % (name, dst.proc.returncode))
    lane.show_errors(name, dst, 5)
    lane.vms.remove(dst)
    dst.close()


def cancel_setup(lane, name, src):
    """setup: the outgoing connection cannot complete (FullListener)."""
    o = lane.opts
    path = os.path.join(o.sockdir, "%s-full.mig" % name)
    fl = FullListener(path)
    if not fl.full:
        fl.close()
        raise Q.Failure("%s: cannot fill the backlog of %s" % (name, path))
    try:
        src.set_caps(lane.caps())
        src.set_params(lane.params())
        src.qmp.cmd("migrate", uri="unix:" + path)
        time.sleep(o.hold)
        st = src.qmp.cmd("query-migrate").get("status")
        log("%s: %.1f s after migrate to a socket that accepts nothing: "
            "status %s" % (name, o.hold, st))
        src.qmp.cmd("migrate_cancel")
        info = lane.wait_migration_end(src, name, "after migrate_cancel")
    finally:
        mark = len(src.stderr_text())
        fl.close()
    # the connect fails now; QEMU cleans that migration up (its trace
    # migration_cleanup) and only then may the next one start
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if trace_lines(src.stderr_text()[mark:], ["migration_cleanup"]):
            break
        time.sleep(0.2)
    else:
        raise Q.Failure("%s: no migration_cleanup within 60 s of the "
                        "refused connect" % name)
    return info, None


def cancel_active(lane, name, src):
    """active: a bandwidth nothing converges at (Lane.throttled()),
    cancelled once the device's pre-copy data is in the stream."""
    dst = lane.start_dst(other(lane, src.host), lane.caps())
    info = lane.migrate(src, dst, name, params=lane.throttled(),
                        until=lane.mid_transfer)
    if info.get("status") != "active":
        raise Q.Failure("%s: migration %s, not active" % (
            name, info.get("status")))
    src.qmp.cmd("migrate_cancel")
    return lane.wait_migration_end(src, name, "after migrate_cancel"), dst


def to_pre_switchover(lane, name, src):
    """pause-before-switchover: QEMU stops the VM (the device goes to
    STOP_COPY) and waits in pre-switchover for migrate-continue."""
    dst = lane.start_dst(other(lane, src.host), lane.caps())
    src.set_caps(["pause-before-switchover"])
    info = lane.migrate(src, dst, name, until=lambda i: i.get(
        "status") == "pre-switchover")
    if info.get("status") != "pre-switchover":
        raise Q.Failure("%s: migration %s, not pre-switchover" % (
            name, info.get("status")))
    time.sleep(lane.opts.hold)
    st = src.qmp.cmd("query-migrate").get("status")
    log("%s: %.1f s later still %s, source %s" % (name, lane.opts.hold, st,
                                                  src.status()))
    return dst


def cancel_pre_switchover(lane, name, src):
    dst = to_pre_switchover(lane, name, src)
    src.qmp.cmd("migrate_cancel")
    return lane.wait_migration_end(src, name, "after migrate_cancel"), dst


def cancel_device(lane, name, src):
    """device: from pre-switchover with the destination SIGSTOPped, so
    the switchover cannot end: the source either blocks writing the
    device state (with the BQL: the cancel waits for the SIGCONT) or waits
    for the destination's return path (without it: the cancel runs at
    once).  Either way QEMU is in device when the cancel runs."""
    o = lane.opts
    dst = to_pre_switchover(lane, name, src)
    os.kill(dst.proc.pid, signal.SIGSTOP)
    stopped = True
    try:
        src.qmp.cmd("migrate-continue", state="pre-switchover")
        ev = wait_event(src, lambda e: e["event"] == "MIGRATION" and
                        e["data"].get("status") == "device", 60)
        if ev is None:
            raise Q.Failure("%s: no MIGRATION event 'device' after "
                            "migrate-continue" % name)
        log("%s: status device (MIGRATION event), destination stopped"
            % name)
        reply = {}

        def cancel():
            try:
                reply["r"] = src.qmp.cmd("migrate_cancel", timeout=300)
            except (Q.Failure, Q.QMPError, OSError) as e:
                reply["e"] = e
        t = threading.Thread(target=cancel, daemon=True)
        t.start()
        t.join(o.hold)
        if t.is_alive():
            log("%s: the source answers nothing while it writes the "
                "device state (the BQL is held): SIGCONT the destination"
                % name)
        else:
            log("%s: migrate_cancel answered with the destination stopped"
                % name)
        os.kill(dst.proc.pid, signal.SIGCONT)
        stopped = False
        t.join(300)
        if "e" in reply:
            raise Q.Failure("%s: migrate_cancel: %s" % (name, reply["e"]))
        if t.is_alive():
            raise Q.Failure("%s: migrate_cancel unanswered" % name)
    finally:
        if stopped:
            os.kill(dst.proc.pid, signal.SIGCONT)
    return lane.wait_migration_end(src, name, "after migrate_cancel"), dst


CANCELS = {"setup": cancel_setup, "active": cancel_active,
           "pre-switchover": cancel_pre_switchover, "device": cancel_device}


def qemu_cancel_race(src, err0, info, seq):
    """QEMU 10.0's migration_cancel() shuts the return path down before
    it moves the state to CANCELLING; a migration thread that sees the
    dead channel in that window fails the migration instead ("Channel
    error", no 'cancelling' event).  True for exactly that outcome of a
    cancel QEMU ran (its migration_cancel trace)."""
    return info.get("status") == "failed" and "cancelling" not in seq and \
        info.get("error-desc", "").startswith("Channel error") and \
        bool(trace_lines(src.stderr_text()[err0:], ["migration_cancel"]))


def check_driver_after(lane, name, src, err0, what):
    """After a migration that did not complete: the source runs on, QEMU
    last set the device RUNNING and the driver says RUNNING with no
    saving session.  Returns the device states QEMU set."""
    lane.check_src_survives(name, src, lane.opts.survive_seconds, what)
    states = device_states(src, src.host, err0)
    log("%s: device states QEMU set on %s: %s" % (
        name, src.host, " ".join(states) or "none"))
    dbg = debugfs_status(src.host)
    if dbg is None:
        raise Q.Failure("%s: no debugfs status for %s" % (name, src.host))
    log("%s: driver: state %s, saving session %s, arc failures %s, "
        "resets %s" % (name, dbg.get("state"), dbg.get("saving_session"),
                       dbg.get("arc_failures"), dbg.get("resets")))
    if dbg.get("state") != "RUNNING" or dbg.get("saving_session") != "no":
        raise Q.Failure("%s: the driver says state %s, saving session %s "
                        "after %s" % (name, dbg.get("state"),
                                      dbg.get("saving_session"), what))
    if states and states[-1] != "RUNNING":
        raise Q.Failure("%s: QEMU left the device in %s" % (
            name, states[-1]))
    return states


def sc_cancel_phases(lane):
    """A cancel in each phase, then a migration that must complete."""
    o = lane.opts
    phases = [p for p in o.phases.split(",") if p]
    bad = [p for p in phases if p not in CANCELS]
    if bad:
        raise Q.Failure("no such phase: %s (have %s)" % (
            ", ".join(bad), ", ".join(PHASES)))
    add_traces(o, CANCEL_TRACES)
    tests = []
    for p in phases:
        tests += ["cancel-in-%s" % p, "cancel-in-%s-then-migrate" % p]
    lane.plan(*tests, *lane.verdicts("cancel-phases"))
    src = lane.start_src(o.host_a)
    for p in phases:
        name = "cancel-in-%s" % p
        for attempt in (1, 2):
            src.qmp.poll_events()
            src.qmp.take_events("MIGRATION")
            err0 = len(src.stderr_text())
            info, dst = CANCELS[p](lane, name, src)
            src.qmp.poll_events()
            seq = statuses_of(src.qmp.take_events("MIGRATION"))
            log("%s: MIGRATION events: %s" % (name, " ".join(seq)))
            if attempt == 1 and qemu_cancel_race(src, err0, info, seq):
                # Not the cancel under test, but a failed migration: the
                # driver must still be back in RUNNING with no session.
                log("%s: QEMU failed the migration itself as the cancel "
                    "ran (%s; no 'cancelling': its migration_cancel() "
                    "shuts the return path before it sets CANCELLING, "
                    "and the migration thread saw that first): the "
                    "driver checked, the cancel retried once" % (
                        name, info.get("error-desc", "")))
                end_dst(lane, name, dst)
                check_driver_after(lane, name, src, err0, "the failure")
                continue
            break
        why = []
        if info.get("status") != "cancelled":
            why.append("status %s after migrate_cancel: %s" % (
                info.get("status"), info.get("error-desc", "")))
        before = seq[seq.index("cancelling") - 1] \
            if "cancelling" in seq[1:] else None
        if before != p:
            why.append("cancelling came after %s, not %s" % (before, p))
        if why:
            lane.report(name, info)
            end_dst(lane, name, dst)
            raise Q.Failure("%s: %s" % (name, "; ".join(why)))
        states = check_driver_after(lane, name, src, err0, "the cancel")
        lane.result(name, True, "MIGRATION %s; source running, guest "
                    "progressing, device states %s, driver RUNNING" % (
                        ">".join(seq), ">".join(states) or "untouched"))
        end_dst(lane, name, dst)
        src.qmp.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "pause-before-switchover", "state": False}])
        dst = lane.start_dst(other(lane, src.host), lane.caps())
        lane.migrate_checked(src, dst, name + "-then-migrate",
                             name + "-then-migrate")
        lane.finish(src)
        src = dst
    lane.end_guest(src, "cancel-phases")
    lane.finish(src)


# -- downtime from MIG_DATA_SIZE --

SIZE_TRACES = ["vfio_state_pending_exact", "vfio_save_complete_precopy_start",
               "vfio_save_block", "vfio_save_complete_precopy",
               "migration_thread_low_pending", "migrate_pending_exact",
               "migrate_transferred"]
# The guest workload's LOADs go to MAX_REGIONS (16) SRAM regions, one
# 4 KiB page each (tools/guest/guest.c): all the device memory it can
# dirty, as MEM records of one page each (struct vmig_rec_hdr, 24 bytes,
# the 8-byte offset and the page: 4128 bytes).
WORKLOAD_PAGES = 16
MEM_PAGE_REC = 4096 + 32


def stop_copy_sizes(text, hosts):
    """Per device: the stop-copy size of the last vfio_state_pending_exact
    before QEMU decided to switch over (migration_thread_low_pending), the
    number of such queries, and the bytes vfio_save_block read between
    vfio_save_complete_precopy_start and vfio_save_complete_precopy; and
    QEMU's pending total and threshold at the decision."""
    est = {h: None for h in hosts}
    nq = {h: 0 for h in hosts}
    read = {h: None for h in hosts}
    inside = set()
    decided = False
    pending = threshold = None
    for ev, rest in trace_lines(text, SIZE_TRACES):
        dev = dev_of(rest)
        if ev == "migration_thread_low_pending":
            if not decided:
                m = re.search(r"(\d+)", rest)
                pending = int(m.group(1)) if m else None
            decided = True
        elif ev == "migrate_transferred" and not decided:
            m = re.search(r"max_size (\d+)", rest)
            threshold = int(m.group(1)) if m else threshold
        elif ev == "vfio_state_pending_exact" and not decided and \
                dev in est:
            m = re.search(r"stopcopy size (\d+)", rest)
            if m:
                est[dev] = int(m.group(1))
                nq[dev] += 1
        elif ev == "vfio_save_complete_precopy_start" and dev in read:
            inside.add(dev)
            read[dev] = 0
        elif ev == "vfio_save_block" and dev in inside:
            m = re.search(r"data_size (\d+)", rest)
            read[dev] += int(m.group(1)) if m else 0
        elif ev == "vfio_save_complete_precopy" and dev in inside:
            inside.discard(dev)
    return est, nq, read, pending, threshold


def size_check(lane, leg, src, err0, short_ok):
    """The stop-copy sizes of one migration: problems, notes.  The
    estimate may exceed the bytes read by --size-margin; it may fall
    short by @short_ok bytes (0: never)."""
    o = lane.opts
    hosts = src.host.split("+")
    est, nq, read, pending, threshold = stop_copy_sizes(
        src.stderr_text()[err0:], hosts)
    why = []
    notes = []
    for h in hosts:
        e, r = est[h], read[h]
        log("metric: %s %s %s stop-copy-estimate-bytes=%s stop-copy-read-"
            "bytes=%s estimate-minus-read=%s exact-queries=%d" % (
                o.label or "downtime", leg, h, e, r,
                e - r if e is not None and r is not None else None, nq[h]))
        if e is None:
            why.append("%s: no vfio_state_pending_exact before the "
                       "switchover" % h)
        elif r is None:
            why.append("%s: no STOP_COPY read traced" % h)
        elif r - e > short_ok:
            why.append("%s: stop_copy_length %d < %d bytes read in "
                       "STOP_COPY (short by %d%s)" % (
                           h, e, r, r - e, ", more than %d" % short_ok
                           if short_ok else ""))
        elif e - r > o.size_margin:
            why.append("%s: stop_copy_length %d exceeds the %d bytes read "
                       "by %d (> %d)" % (h, e, r, e - r, o.size_margin))
        if e is not None and r is not None:
            notes.append("%s: estimate %d, read %d (%+d)" % (h, e, r,
                                                             e - r))
    log("%s: QEMU switched over with %s bytes pending under the threshold "
        "%s (avail-switchover-bandwidth x downtime-limit %d ms)" % (
            leg, pending, threshold, o.dt_limit))
    return why, "; ".join(notes)


def wait_status(vm, want, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = vm.status()
        if st == want:
            return st
        time.sleep(0.2)
    raise Q.Failure("%s: status %s, not %s after %.0f s" % (
        vm.name, vm.status(), want, timeout))


def migrate_frozen(lane, src, dst, leg):
    """Pre-copy at a bandwidth nothing converges at until the device's
    initial data is in the stream, then QMP stop: QEMU puts a device in
    pre-copy straight into STOP_COPY (vfio_vmstate_change(), RUN_STATE_
    PAUSED), its work in flight parked by the quiesce; then the normal
    parameters with --dt-limit.  The destination stays paused (the
    source's run state travels) until cont."""
    o = lane.opts

    def initial_sent(info):
        return info.get("status") == "active" and \
            info.get("vfio", {}).get("transferred", 0) >= (1 << 20)
    info = lane.migrate(src, dst, leg, params=lane.throttled(),
                        until=initial_sent)
    if info.get("status") != "active":
        raise Q.Failure("%s: migration %s before the stop" % (
            leg, info.get("status")))
    src.qmp.cmd("stop")
    wait_status(src, "paused", 60)
    log("%s: source stopped during pre-copy (vfio %s bytes sent)" % (
        leg, info.get("vfio", {}).get("transferred")))
    src.set_params(lane.params({"downtime-limit": o.dt_limit}))
    info = lane.wait_migration_end(src, leg, "after the stop")
    if info.get("status") == "completed":
        wait_status(dst, "paused", o.boot_timeout)
        dst.qmp.cmd("cont")
    return info


def sc_downtime_size(lane):
    """MIG_DATA_SIZE at the switchover decision against the real
    stop-copy bytes, and a downtime-limit that QEMU meets.

    QEMU asks for the stop-copy size (vfio_state_pending_exact) in
    every pre-copy iteration whose estimate is under its threshold, and
    switches over after the last one (migration_thread_low_pending)
    without reading pre-copy data again: what STOP_COPY then reads is the
    device memory pending at that query, the STATE record and END.  The
    driver counts the same MEM records, the STATE record at the device's
    maximum (MIG_STATE_MAX, the model's 4 KiB window) and END
    (vmig_get_data_size()), so for a device that changes nothing after the
    query the estimate exceeds the bytes read by MIG_STATE_MAX minus the
    real state size: at most 4096 bytes, the --size-margin, and is never
    less.  That is asserted for an idle device (mode=nodev) and for a busy
    one that QEMU froze before it asked (QMP stop during pre-copy: the
    device goes to STOP_COPY, its work in flight parked).

    A busy device that runs while QEMU asks keeps writing SRAM until the
    VM stops, after the query: no estimate of the present can count those
    pages.  The busy scenario measures that too (a second leg, B -> A,
    running) and asserts the bound the workload sets: short by at most
    its WORKLOAD_PAGES SRAM pages, over by at most --size-margin.

    The limit: QEMU switches over once the pending bytes (guest RAM, all
    dirty with type1, plus the stop-copy size) are under
    avail-switchover-bandwidth x downtime-limit; the downtime it then
    measures has no slack documented in QEMU (qapi: "maximum tolerated
    downtime") and includes stopping the VM and the destination's load.
    The lane's downtimes are 0.3-0.5 s under TCG, so --dt-limit 5000 ms
    leaves a shared TCG host ten times that and still fails a stop-copy
    that stalls or a size QEMU cannot switch over with.
    """
    o = lane.opts
    add_traces(o, SIZE_TRACES)
    busy = lane.drives_device()
    legs = [("downtime-frozen-A-to-B" if busy else "downtime-A-to-B",
             "stop-copy-size")]
    if busy:
        legs.append(("downtime-running-B-to-A", "running-stop-copy-size"))
    tests = []
    for leg, size in legs:
        tests += [leg, size]
    lane.plan(*tests, *lane.verdicts("downtime"))
    src = lane.start_src(o.host_a)
    downtimes = []
    for leg, size in legs:
        dst = lane.start_dst(other(lane, src.host), lane.caps())
        err0 = len(src.stderr_text())
        if leg.startswith("downtime-frozen"):
            info = migrate_frozen(lane, src, dst, leg)
        else:
            info = lane.migrate(src, dst, leg, params={"downtime-limit":
                                                       o.dt_limit})
        lane.check_completed(leg, src, dst, info)
        lane.result(leg, True, "downtime %s ms, vfio %s bytes" % (
            info.get("downtime"), info.get("vfio", {}).get("transferred")))
        downtimes.append((leg, info.get("downtime")))
        short_ok = WORKLOAD_PAGES * MEM_PAGE_REC if size.startswith(
            "running") else 0
        why, notes = size_check(lane, leg, src, err0, short_ok)
        lane.result(size, not why, "; ".join(why) or "%s, margin +%d/-%d"
                    % (notes, o.size_margin, short_ok))
        lane.finish(src)
        src = dst
    # Measured, never asserted: a downtime against a limit is a timing
    # threshold, and the host's load decides it as much as the device.
    log("metric: %s downtime-limit-ms=%d %s" % (
        o.label or "downtime", o.dt_limit, " ".join(
            "%s-downtime-ms=%s" % (leg, dt) for leg, dt in downtimes)))
    lane.end_guest(src, "downtime")
    lane.finish(src)


SCENARIOS = {
    "pingpong-n": sc_pingpong_n,
    "cancel-phases": sc_cancel_phases,
    "downtime-size": sc_downtime_size,
}
