# SPDX-License-Identifier: GPL-2.0
"""QEMU lane: scenarios for VFIO migration features of stock QEMU 10.0.

Imported by qmp_migrate.py (which binds itself in with bind()), standard
library only.  Each scenario drives the same Lane as the others and prints
the same "ok - NAME # detail" / "not ok - NAME" lines.

    postcopy           postcopy-ram asked for: QEMU refuses the migrate
                       with its VFIO message, the source keeps running, a
                       normal migration to the same destination succeeds
    migration-events   migration-events=on: the VFIO_MIGRATION events of
                       every QEMU equal, per device, the arcs the driver's
                       refaccel_arc tracepoint recorded while it lived
    multifd            multifd (4 channels) and x-migration-multifd-
                       transfer=on, A -> B -> A: the device state goes
                       through the multifd channels and the destination's
                       load thread, config space is loaded after it
    no-switchover-ack  return-path and switchover-ack off, A -> B

and --switchover-ack-trace, for any scenario: QEMU's trace of every
migration must show the device's initial data done (vfio_save_iterate
with "precopy initial size 0"), then the destination's ack
(source_return_path_thread_switchover_acked), then the switchover
(migration_thread_low_pending), and the destination approving it.
"""

import os
import re
import subprocess
import time

Q = None        # the qmp_migrate module (bind())


def bind(mod):
    global Q
    Q = mod


def add_options(ap):
    ap.add_argument("--multifd-channels", type=int, default=4,
                    help="multifd: multifd-channels on both sides")
    ap.add_argument("--switchover-ack-trace", action="store_true",
                    help="trace the switchover-ack handshake of every "
                    "migration and check its order (test "
                    "switchover-ack-trace)")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="migration-events: seconds without a new "
                    "VFIO_MIGRATION event before the events are compared")


def log(msg):
    Q.log(msg)


# One QEMU trace line of the log backend: "PID@SECONDS:NAME ARGS".
def trace_lines(text, names):
    pat = re.compile(r"^(?:\d+@[\d.]+:)?(%s)\b(.*)$" % "|".join(
        re.escape(n) for n in names), re.M)
    return [(m.group(1), m.group(2)) for m in pat.finditer(text)]


def dev_of(rest):
    """The device name QEMU's vfio traces put in parentheses."""
    m = re.search(r"\(([^)]*)\)", rest)
    return m.group(1) if m else None


def hosts_of(vm):
    return vm.host.split("+")


def vfio_props(qemu):
    """The properties of -device vfio-pci this QEMU knows."""
    try:
        out = subprocess.run([qemu, "-device", "vfio-pci,help"],
                             stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return None, str(e)
    return set(re.findall(r"^\s*([a-z0-9-]+)=", out.decode(errors="replace"),
                          re.M)), ""


def skip(lane, name, why):
    """One SKIP line for the whole scenario (nothing else reported)."""
    lane.planned = []
    lane.skipped = True
    lane.result(name, True, "SKIP " + why)


def need_props(lane, name, props):
    have, err = vfio_props(lane.opts.qemu)
    if have is None:
        skip(lane, name, "cannot ask %s for vfio-pci's properties: %s"
             % (lane.opts.qemu, err))
        return False
    missing = [p for p in props if p not in have]
    if missing:
        skip(lane, name, "this QEMU's vfio-pci has no %s"
             % ", ".join(missing))
        return False
    return True


def add_vfio_opts(opts, *props):
    for p in props:
        if p not in opts.vfio_opts:
            opts.vfio_opts += "," + p


def add_traces(opts, names):
    for n in names:
        if n not in opts.trace:
            opts.trace.append(n)


# -- switchover-ack, as QEMU traces it --

ACK_TRACES = ["vfio_save_iterate",
              "source_return_path_thread_switchover_acked",
              "migration_thread_low_pending", "migrate_pending_exact",
              "migrate_transferred", "loadvm_state_switchover_ack_needed",
              "loadvm_approve_switchover"]


def setup(lane):
    """Called by Lane.__init__: options that hook into every migration."""
    lane.skipped = False
    lane.acks = []
    if lane.opts.switchover_ack_trace:
        add_traces(lane.opts, ACK_TRACES)
        lane.hooks.append(note_ack)


def planned_extra(lane):
    return ["switchover-ack-trace"] if lane.opts.switchover_ack_trace else []


def note_ack(lane, label, src, dst, err0, derr0, info):
    """The order of the switchover-ack handshake in one migration."""
    s = trace_lines(src.stderr_text()[err0:], ACK_TRACES)
    d = trace_lines(dst.stderr_text()[derr0:], ACK_TRACES)
    a = {"label": label, "status": info.get("status"), "why": []}
    want = set(hosts_of(src))
    init0 = {}
    acked = low = None
    threshold = None
    waits = 0
    for i, (ev, rest) in enumerate(s):
        if ev == "vfio_save_iterate":
            dev = dev_of(rest)
            if dev in want and dev not in init0 and \
                    re.search(r"precopy initial size 0\b", rest):
                init0[dev] = i
        elif ev == "source_return_path_thread_switchover_acked":
            if acked is None:
                acked = i
        elif ev == "migrate_transferred":
            m = re.search(r"max_size (\d+)", rest)
            threshold = int(m.group(1)) if m else threshold
        elif ev == "migrate_pending_exact":
            m = re.search(r"exact pending size (\d+)", rest)
            # below the threshold but not switched over: waiting
            if m and threshold is not None and acked is None and \
                    len(init0) == len(want) and int(m.group(1)) < threshold:
                waits += 1
        elif ev == "migration_thread_low_pending" and low is None:
            low = i
    needed = [r for ev, r in d if ev == "loadvm_state_switchover_ack_needed"]
    approved = [r for ev, r in d if ev == "loadvm_approve_switchover"]
    missing = sorted(want - set(init0))
    if missing:
        a["why"].append("no 'precopy initial size 0' for %s"
                        % ", ".join(missing))
    if acked is None:
        a["why"].append("the source never got the ack")
    if low is None:
        a["why"].append("no migration_thread_low_pending (switchover)")
    if not missing and acked is not None and max(init0.values()) > acked:
        a["why"].append("ack before the initial data was done")
    if acked is not None and low is not None and low < acked:
        a["why"].append("switched over before the ack")
    n_need = [int(x) for x in re.findall(r"num=(\d+)", " ".join(needed))]
    if not n_need or n_need[0] != len(want):
        a["why"].append("destination needed %s ack(s), not %d"
                        % (n_need[0] if n_need else "no", len(want)))
    if not any(re.search(r"num=0\b", r) for r in approved):
        a["why"].append("destination never approved (num=0)")
    a["waits"] = waits
    a["detail"] = ("initial data done at trace line %s, ack at %s, "
                   "switchover at %s; %d exact pending size(s) under the "
                   "threshold before the ack; destination: %d ack(s) "
                   "needed, %d approval(s)" % (
                       ",".join(str(init0[h]) for h in sorted(init0)) or "-",
                       acked, low, waits, n_need[0] if n_need else 0,
                       len(approved)))
    log("%s: switchover-ack: %s" % (label, a["detail"]))
    lane.acks.append(a)


def finish_checks(lane):
    if not lane.opts.switchover_ack_trace or lane.skipped:
        return
    done = [a for a in lane.acks if a["status"] == "completed"]
    if not done:
        lane.result("switchover-ack-trace", True,
                    "SKIP no completed migration in this scenario")
        return
    bad = ["%s: %s" % (a["label"], ", ".join(a["why"]))
           for a in done if a["why"]]
    lane.result("switchover-ack-trace", not bad, "; ".join(bad) or
                "%d migration(s): initial data done, then the ack, then the "
                "switchover; %d poll(s) that waited for the ack" % (
                    len(done), sum(a["waits"] for a in done)))


# -- postcopy --

POSTCOPY_MSG = "VFIO migration is not supported with postcopy migration"


def sc_postcopy(lane):
    """postcopy-ram on the source: hw/vfio/migration.c's save_prepare
    refuses the migrate command for a VFIO device (the capability itself
    is checked only on a destination); then a normal migration."""
    o = lane.opts
    name = "postcopy-refused"
    lane.plan(name, name + "-source-survives", "postcopy-then-migrate",
              *lane.verdicts("postcopy"))
    src = lane.start_src(o.host_a)
    dst = lane.start_dst(o.host_b, lane.caps())
    src.set_params(lane.params())
    caps = [{"capability": c, "state": True} for c in lane.caps()]
    caps.append({"capability": "postcopy-ram", "state": True})
    want = ["%s: %s" % (h, POSTCOPY_MSG) for h in hosts_of(src)]
    err = None
    where = "migrate"
    try:
        src.qmp.cmd("migrate-set-capabilities", capabilities=caps)
    except Q.QMPError as e:
        err, where = e.err, "migrate-set-capabilities"
    if err is None:
        on = [c["capability"] for c in
              src.qmp.cmd("query-migrate-capabilities") if c["state"]]
        log("%s: capabilities accepted, on: %s" % (name, ", ".join(on)))
        if "postcopy-ram" not in on:
            raise Q.Failure("%s: postcopy-ram accepted but not on" % name)
        t0 = time.monotonic()
        try:
            src.qmp.cmd("migrate", timeout=o.refuse_timeout,
                        uri=dst.incoming)
        except Q.QMPError as e:
            err = e.err
        log("%s: migrate answered in %.2f s" % (name,
                                                time.monotonic() - t0))
    desc = err.get("desc", "") if err else ""
    info = src.qmp.cmd("query-migrate")
    st = info.get("status", "none")
    if st not in ("none", "failed") and err is None:
        # refused late: the migration must fail with the message
        info = lane.wait_migration_end(src, name, "with postcopy-ram")
        st = info.get("status")
        desc = info.get("error-desc", "")
        where = "query-migrate"
    dst_st = dst.status()
    log("%s: %s said: %s; source migration %s, destination %s" % (
        name, where, desc or "nothing", st, dst_st))
    why = []
    if not desc:
        why.append("postcopy-ram accepted and the migration %s" % st)
    elif not any(w in desc for w in want):
        why.append("the error is not QEMU's VFIO one '%s'" % want[0])
    if st not in ("none", "failed"):
        why.append("source migration status %s" % st)
    if dst_st != "inmigrate":
        why.append("destination %s, not still waiting" % dst_st)
    if why:
        raise Q.Failure("%s: %s" % (name, "; ".join(why)))
    lane.result(name, True, "%s: %s (status %s, destination %s)"
                % (where, desc, st, dst_st))
    lane.check_src_survives(name, src, o.survive_seconds,
                            "the refused postcopy migrate")
    lane.result(name + "-source-survives", True,
                "running %d s later%s" % (o.survive_seconds,
                                          ", guest progressing"
                                          if lane.drives_device() else ""))
    src.qmp.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "postcopy-ram", "state": False}])
    lane.migrate_checked(src, dst, "postcopy-then-migrate",
                         "postcopy-then-migrate")
    lane.finish(src)
    lane.end_guest(dst, "postcopy")
    lane.finish(dst)


# -- migration-events against the driver's arcs --

QAPI_STATE = {"stop": "STOP", "running": "RUNNING", "stop-copy": "STOP_COPY",
              "resuming": "RESUMING", "running-p2p": "RUNNING_P2P",
              "pre-copy": "PRE_COPY", "pre-copy-p2p": "PRE_COPY_P2P"}
# The single arcs of the v2 FSM for a device with P2P and PRE_COPY
# (include/uapi/linux/vfio.h): a request the kernel splits into several
# goes through these only.
ARCS = {("RUNNING", "RUNNING_P2P"), ("RUNNING_P2P", "RUNNING"),
        ("RUNNING_P2P", "STOP"), ("STOP", "RUNNING_P2P"),
        ("STOP", "STOP_COPY"), ("STOP_COPY", "STOP"),
        ("STOP", "RESUMING"), ("RESUMING", "STOP"),
        ("RUNNING", "PRE_COPY"), ("PRE_COPY", "RUNNING"),
        ("RUNNING_P2P", "PRE_COPY_P2P"), ("PRE_COPY_P2P", "RUNNING_P2P"),
        ("PRE_COPY", "PRE_COPY_P2P"), ("PRE_COPY_P2P", "PRE_COPY"),
        ("PRE_COPY_P2P", "STOP_COPY")}
ARC_RE = re.compile(r"refaccel_arc: (\S+) ([A-Z0-9_]+) -> ([A-Z0-9_]+): "
                    r"(-?\d+) us, err (-?\d+)")
MARK_RE = re.compile(r"tracing_mark_write: qemu-lane: (begin|end) (\S+)")


class DriverTrace:
    """The driver's refaccel_arc tracepoint through tracefs, with markers
    (trace_marker) around the life of each QEMU."""

    def __init__(self):
        self.t = None
        for t in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
            if os.path.isdir(t + "/events"):
                self.t = t
                break
        if self.t is None:
            subprocess.run(["mount", "-t", "tracefs", "nodev",
                            "/sys/kernel/tracing"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            if os.path.isdir("/sys/kernel/tracing/events"):
                self.t = "/sys/kernel/tracing"
        self.ev = self.t and self.t + "/events/refaccel_vfio/refaccel_arc"

    def missing(self):
        if self.t is None:
            return "no tracefs"
        if not os.path.isdir(self.ev):
            return "no %s (module without tracepoints?)" % self.ev
        return ""

    def _write(self, path, text):
        with open(path, "w") as f:
            f.write(text)

    def start(self):
        self._write(self.t + "/trace", "")
        self._write(self.ev + "/enable", "1")

    def stop(self):
        try:
            self._write(self.ev + "/enable", "0")
        except OSError:
            pass

    def mark(self, what, vm_name):
        self._write(self.t + "/trace_marker",
                    "qemu-lane: %s %s\n" % (what, vm_name))

    def arcs(self, vm_name, dev):
        """(from, to, err) of @dev between the markers of @vm_name."""
        with open(self.t + "/trace") as f:
            text = f.read()
        out = []
        inside = False
        for ln in text.splitlines():
            m = MARK_RE.search(ln)
            if m and m.group(2) == vm_name:
                inside = m.group(1) == "begin"
                continue
            m = ARC_RE.search(ln)
            if inside and m and m.group(1) == dev:
                out.append((m.group(2), m.group(3), int(m.group(5))))
        return out


def match_events(states, arcs):
    """Split the driver's arcs into one run per announced state: each run
    is a chain of single arcs that ends in that state.  Returns a list of
    problems (empty: the sequences are equal)."""
    why = []
    cur = "RUNNING"
    i = 0
    for n, want in enumerate(states):
        run = []
        while i < len(arcs):
            frm, to, err = arcs[i]
            i += 1
            run.append("%s>%s" % (frm, to))
            if err:
                why.append("arc %s -> %s failed (%d)" % (frm, to, err))
            if frm != cur:
                why.append("arc %s -> %s does not start in %s" % (frm, to,
                                                                  cur))
            if (frm, to) not in ARCS:
                why.append("%s -> %s is no single arc of the FSM" % (frm,
                                                                     to))
            cur = to
            if to == want:
                break
        if cur != want:
            why.append("event %d (%s): the driver's arcs end in %s"
                       % (n + 1, want, cur))
            break
    if i < len(arcs):
        why.append("%d arc(s) with no event: %s" % (
            len(arcs) - i, ", ".join("%s>%s" % a[:2] for a in arcs[i:])))
    return why


def settle_events(vm, quiet):
    """Poll until no VFIO_MIGRATION event came for @quiet seconds."""
    deadline = time.monotonic() + 30
    n = -1
    last = time.monotonic()
    while time.monotonic() < deadline:
        vm.qmp.poll_events()
        k = sum(1 for e in vm.qmp.events if e["event"] == "VFIO_MIGRATION")
        if k != n:
            n, last = k, time.monotonic()
        elif time.monotonic() - last >= quiet:
            break
        time.sleep(0.25)


def sc_migration_events(lane):
    o = lane.opts
    name = "migration-events"
    if not need_props(lane, name, ["migration-events"]):
        return
    dt = DriverTrace()
    why = dt.missing()
    if why:
        skip(lane, name, why)
        return
    add_vfio_opts(o, "migration-events=on")
    tests = ["migrate-A-to-B", "migrate-B-to-A", "events-vm1-A",
             "events-vm2-B", "events-vm3-A"]
    lane.plan(*tests, *lane.verdicts("migration-events"))
    dt.start()
    try:
        def run(host, incoming):
            # the marker goes first: the VM's name is known before it is
            vm_name = lane_next_name(lane, host, incoming)
            dt.mark("begin", vm_name)
            vm = lane.start_dst(host, lane.caps()) if incoming \
                else lane.start_src(host)
            if vm.name != vm_name:
                raise Q.Failure("VM %s, marked as %s" % (vm.name, vm_name))
            return vm

        def close(vm, test, roles):
            settle_events(vm, o.settle)
            evs = vm.qmp.take_events("VFIO_MIGRATION")
            dt.mark("end", vm.name)
            compare(lane, dt, test, vm, evs, roles)

        src = run(o.host_a, False)
        dst = run(o.host_b, True)
        lane.migrate_checked(src, dst, tests[0], tests[0])
        close(src, "events-vm1-A", ["STOP_COPY"])
        lane.finish(src)
        src = dst
        dst = run(o.host_a, True)
        lane.migrate_checked(src, dst, tests[1], tests[1])
        close(src, "events-vm2-B", ["RESUMING", "STOP_COPY"])
        lane.finish(src)
        close(dst, "events-vm3-A", ["RESUMING"])
        lane.end_guest(dst, "migration-events")
        lane.finish(dst)
    finally:
        dt.stop()


def lane_next_name(lane, host, incoming):
    """The name Lane.new_vm() gives the next VM."""
    return "%s%d-%s" % ("dst" if incoming else "src", lane.seq + 1,
                        host.replace(":", "_"))


def compare(lane, dt, test, vm, evs, roles):
    """The states @vm announced per device against the driver's arcs;
    @roles: states it must have announced (STOP_COPY as a source,
    RESUMING as a destination)."""
    why = []
    detail = []
    for i, host in enumerate(hosts_of(vm)):
        dev_id = "ra%d" % i
        states = [QAPI_STATE.get(e["data"].get("device-state"), "?")
                  for e in evs if e["data"].get("device-id") == dev_id]
        arcs = dt.arcs(vm.name, host)
        log("%s: %s %s: QEMU announced %s" % (test, vm.name, dev_id,
                                              " ".join(states) or "nothing"))
        log("%s: %s %s: the driver's arcs %s" % (
            test, vm.name, host, " ".join("%s>%s%s" % (
                f, t, "(err %d)" % e if e else "") for f, t, e in arcs)
            or "none"))
        lacking = [r for r in roles if r not in states]
        if lacking:
            why.append("%s: no %s event" % (dev_id, "/".join(lacking)))
        why += ["%s: %s" % (dev_id, w) for w in match_events(states, arcs)]
        detail.append("%s (%s): %d events = %d arcs: %s" % (
            dev_id, host, len(states), len(arcs), " ".join(states)))
    lane.result(test, not why, "; ".join(why) or ", ".join(detail))


# -- multifd device state --

MULTIFD_TRACES = ["vfio_save_complete_precopy_thread_start",
                  "vfio_save_complete_precopy_thread_end",
                  "vfio_save_complete_precopy_start",
                  "vfio_load_bufs_thread_start", "vfio_load_bufs_thread_end",
                  "vfio_load_state_device_buffer_start",
                  "vfio_load_state_device_buffer_load_start",
                  "vfio_load_state_device_buffer_load_end",
                  "vfio_load_state_device_buffer_end",
                  "vfio_load_state_device_buffer_incoming",
                  "vfio_load_device_config_state_start",
                  "vfio_load_device_config_state_end",
                  "multifd_send_thread_start", "multifd_send_thread_end",
                  "multifd_recv_thread_start", "multifd_recv_thread_end"]


def multifd_check(lane, label, src, dst, err0, derr0, info):
    """What the source and destination traced about one migration's
    multifd device-state transfer; problems in lane.multifd[label]."""
    n = lane.opts.multifd_channels
    s = trace_lines(src.stderr_text()[err0:], MULTIFD_TRACES)
    d = trace_lines(dst.stderr_text()[derr0:], MULTIFD_TRACES)
    why = []
    sends = sum(1 for ev, _ in s if ev == "multifd_send_thread_start")
    recvs = sum(1 for ev, _ in d if ev == "multifd_recv_thread_start")
    pk = [int(x) for ev, r in s if ev == "multifd_send_thread_end"
          for x in re.findall(r"packets (\d+)", r)]
    if sends != n:
        why.append("%d multifd send threads, not %d" % (sends, n))
    if recvs != n:
        why.append("%d multifd receive threads, not %d" % (recvs, n))
    notes = ["%d+%d channels, %d packets sent" % (sends, recvs, sum(pk))]
    for host in hosts_of(src):
        ss = [(ev, r) for ev, r in s if dev_of(r) == host]
        if not any(ev == "vfio_save_complete_precopy_thread_start"
                   for ev, _ in ss):
            why.append("%s: no save thread on the source" % host)
        if not any(ev == "vfio_save_complete_precopy_thread_end" and
                   re.search(r"ret 1\b", r) for ev, r in ss):
            why.append("%s: the source's save thread did not end with "
                       "ret 1" % host)
        if any(ev == "vfio_save_complete_precopy_start" for ev, _ in ss):
            why.append("%s: stop-copy data on the main channel" % host)
    for host in hosts_of(dst):
        dd = [(ev, r) for ev, r in d if dev_of(r) == host]
        seq = [ev for ev, _ in dd]

        def idx(ev):
            return sorted(int(x) for e, r in dd if e == ev
                          for x in re.findall(r"idx (\d+)", r))
        inc = idx("vfio_load_state_device_buffer_incoming")
        loaded = idx("vfio_load_state_device_buffer_load_end")

        def at(ev, last=False):
            if ev not in seq:
                return None
            return len(seq) - 1 - seq[::-1].index(ev) if last \
                else seq.index(ev)
        # (vfio_load_state_device_buffer_end is traced only when the
        # config packet, which ends the sequence, came before the last
        # buffer was written: the last load_end is what marks the end)
        t0 = at("vfio_load_bufs_thread_start")
        b1 = at("vfio_load_state_device_buffer_load_end", last=True)
        c0 = at("vfio_load_device_config_state_start")
        c1 = at("vfio_load_device_config_state_end")
        t1 = at("vfio_load_bufs_thread_end")
        if None in (t0, b1, c0, c1, t1):
            why.append("%s: load thread trace incomplete (thread start %s, "
                       "last buffer written %s, config start %s, config "
                       "end %s, thread end %s)" % (host, t0, b1, c0, c1, t1))
        elif not t0 < b1 < c0 < c1 < t1:
            why.append("%s: order on the destination is not thread start < "
                       "last buffer written < config start < config end < "
                       "thread end (%d %d %d %d %d)" % (host, t0, b1, c0,
                                                        c1, t1))
        if seq.count("vfio_load_device_config_state_start") != 1:
            why.append("%s: config space loaded %d times" % (
                host, seq.count("vfio_load_device_config_state_start")))
        # packets 0..n-1 came in, the last is config space, the others
        # were written to the device by the load thread
        if len(inc) < 2 or inc != list(range(len(inc))) or \
                loaded != list(range(len(inc) - 1)):
            why.append("%s: device-state packets in %s, written %s"
                       % (host, inc, loaded))
        notes.append("%s: %d device-state packets in, %d written by the "
                     "load thread, then config space (packet %d)"
                     % (host, len(inc), len(loaded), len(inc) - 1))
    lane.multifd[label] = (why, "; ".join(notes))
    log("%s: multifd: %s" % (label, "; ".join(notes)))
    for w in why:
        log("%s: multifd: %s" % (label, w))


def sc_multifd(lane):
    o = lane.opts
    name = "multifd"
    if not need_props(lane, name, ["x-migration-multifd-transfer"]):
        return
    add_vfio_opts(o, "x-migration-multifd-transfer=on")
    add_traces(o, MULTIFD_TRACES)
    if "multifd" not in o.cap:
        o.cap.append("multifd")
    o.param.append("multifd-channels=%d" % o.multifd_channels)
    lane.multifd = {}
    lane.hooks.append(multifd_check)
    legs = [("A", "B"), ("B", "A")]
    tests = []
    for a, b in legs:
        tests += ["multifd-%s-to-%s" % (a, b),
                  "multifd-%s-to-%s-device-state" % (a, b)]
    lane.plan(*tests, *lane.verdicts("multifd"))
    dparams = {"multifd-channels": o.multifd_channels}
    src = lane.start_src(o.host_a)
    for a, b in legs:
        host = o.host_b if b == "B" else o.host_a
        dst = lane.start_dst(host, lane.caps(), dparams)
        t = "multifd-%s-to-%s" % (a, b)
        info = lane.migrate(src, dst, t)
        lane.check_completed(t, src, dst, info)
        lane.result(t, True, "downtime %s ms, vfio %s bytes" % (
            info.get("downtime"), info.get("vfio", {}).get("transferred")))
        why, notes = lane.multifd.get(t, (["no trace checked"], ""))
        lane.result(t + "-device-state", not why, "; ".join(why) or notes)
        lane.finish(src)
        src = dst
    lane.end_guest(src, "multifd")
    lane.finish(src)


# -- switchover-ack off --

def sc_no_switchover_ack(lane):
    """return-path and switchover-ack off on both sides: QEMU switches
    over without the destination's ack; the trace must show no ack."""
    o = lane.opts
    o.switchover_ack = False
    add_traces(o, ACK_TRACES)
    name = "no-switchover-ack"
    lane.plan(name, name + "-trace", *lane.verdicts(name))
    src = lane.start_src(o.host_a)
    dst = lane.start_dst(o.host_b, lane.caps())
    derr0 = len(dst.stderr_text())
    err0 = len(src.stderr_text())
    info = lane.migrate_checked(src, dst, name, name)
    why = []
    for vm in (src, dst):
        on = [c["capability"] for c in
              vm.qmp.cmd("query-migrate-capabilities") if c["state"]]
        log("%s: %s capabilities on: %s" % (name, vm.name, ", ".join(on)))
        bad = [c for c in ("switchover-ack", "return-path") if c in on]
        if bad:
            why.append("%s has %s on" % (vm.name, ", ".join(bad)))
    s = trace_lines(src.stderr_text()[err0:], ACK_TRACES)
    d = trace_lines(dst.stderr_text()[derr0:], ACK_TRACES)
    acks = [ev for ev, _ in s + d if ev in (
        "source_return_path_thread_switchover_acked",
        "loadvm_state_switchover_ack_needed", "loadvm_approve_switchover")]
    iters = sum(1 for ev, _ in s if ev == "vfio_save_iterate")
    low = sum(1 for ev, _ in s if ev == "migration_thread_low_pending")
    if acks:
        why.append("ack traced: %s" % ", ".join(sorted(set(acks))))
    if not low:
        why.append("no migration_thread_low_pending (switchover) traced")
    lane.result(name + "-trace", not why, "; ".join(why) or
                "no ack traced on either side, %d device pre-copy "
                "iteration(s), switchover traced, downtime %s ms" % (
                    iters, info.get("downtime")))
    lane.finish(src)
    lane.end_guest(dst, name)
    lane.finish(dst)


SCENARIOS = {
    "postcopy": sc_postcopy,
    "migration-events": sc_migration_events,
    "multifd": sc_multifd,
    "no-switchover-ack": sc_no_switchover_ack,
}
