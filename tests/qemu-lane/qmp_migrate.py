#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""QEMU lane: live-migrate a guest that owns a refaccel function through
Debian's stock QEMU (vfio-pci), driven over QMP.

Runs inside the test VM (tests/qemu-lane/run.sh), standard library only.
A scenario starts a source QEMU with ``-device vfio-pci,host=A`` and a
destination QEMU with ``-device vfio-pci,host=B`` and an incoming unix
socket, migrates, and prints

    ok - NAME            or   not ok - NAME
    # key: value         numbers and diagnostics

lines (run.sh numbers them into TAP).  Exit status: 0 when every check of
the scenario passed.

    qmp_migrate.py [options] SCENARIO
    qmp_migrate.py --help

Scenarios: migrate (A->B), pingpong (A->B then B->A), precopy-iters,
cancel-retry, kill-dst, stop-cont, reset, refused (the device does not
offer migration: QEMU must name the blocker and refuse the migrate
command, the source keeps running), probe (boot A, print HMP output such
as ``info mtree -f``, try one migration, print the result; for
debugging), those of scenarios_qemu10.py (QEMU 10.0 features:
postcopy, migration-events, multifd, no-switchover-ack) and those of
scenarios_stress.py (pingpong-n, cancel-phases, downtime-size).
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import scenarios_qemu10 as q10
import scenarios_stress as stress

FIRMWARE = ["-L", "/usr/share/qemu", "-L", "/usr/share/seabios",
            "-L", "/usr/lib/ipxe/qemu"]

PROGRESS_RE = re.compile(
    rb"refaccel-guest: progress submitted=(\d+) completed=(\d+) wrong=(\d+)")
VERDICT_RE = re.compile(rb"refaccel-guest: (PASS|FAIL.*)")
HEARTBEAT_RE = re.compile(rb"refaccel-guest: heartbeat ")
SUMMARY_RE = re.compile(rb"refaccel-guest: (\d+) submitted, (\d+) completed"
                        rb"[^,\n]*, (\d+) wrong")
STREAMED_RE = re.compile(rb"refaccel-guest: progress .* streamed=(\d+)")
STREAM_RE = re.compile(rb"refaccel-guest: stream: (\d+) pages, (\d+) FILLs, "
                       rb"(\d+) checks, (\d+) bad \((\d+) at the end\), "
                       rb"(\d+) unfinished")

# What QEMU traces about dirty tracking (-trace, log backend, stderr):
# which backend it attached the device with, whether it started the
# device's DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_START), every
# dirty bitmap it fetched (from the device, the type1 container or an
# IOMMUFD HWPT), and IOMMUFD's own (IOMMU) dirty tracking.
TRACKING_TRACES = ["vfio_attach_device", "iommufd_cdev_getfd",
                   "iommufd_backend_alloc_hwpt",
                   "vfio_device_dirty_tracking_start",
                   "vfio_get_dirty_bitmap", "iommufd_backend_set_dirty",
                   "iommufd_backend_get_dirty_bitmap"]
TRACE_LINE_RE = re.compile(r"^(?:\d+@[\d.]+:)?(%s)\b(.*)$"
                           % "|".join(TRACKING_TRACES), re.M)
NO_TRACKING_MSG = "doesn't support device and IOMMU dirty tracking"


def log(msg):
    print("# " + msg, flush=True)


class Failure(Exception):
    """A check of the scenario failed."""


class QMPError(Exception):
    def __init__(self, cmd, err):
        super().__init__("%s: %s: %s" % (cmd, err.get("class"),
                                         err.get("desc")))
        self.err = err


def connect_unix(path, timeout, proc, what):
    """Connect to QEMU's server socket @path once it is there."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if proc is not None and proc.poll() is not None:
                raise Failure("QEMU exited (status %s) before its %s socket "
                              "%s came up" % (proc.returncode, what, path))
            if time.monotonic() > deadline:
                raise Failure("no %s socket at %s after %.0f s"
                              % (what, path, timeout))
            time.sleep(0.1)


class QMP:
    """A minimal QMP client over a unix socket: greeting, capabilities
    negotiation, synchronous commands, and events collected on the side."""

    # "migrate" commands QEMU accepted, over every VM of the run: a
    # scenario that started none (QEMU refused) ran no migration whose
    # device resets could be judged (tests/qemu-lane/run.sh)
    migrations = 0

    def __init__(self, path, timeout=60.0, proc=None):
        self.path = path
        self.buf = b""
        self.events = []
        self.next_id = 0
        self.sock = connect_unix(path, timeout, proc, "QMP")
        greeting = self._read(timeout)
        if "QMP" not in greeting:
            raise Failure("bad QMP greeting %r" % greeting)
        self.version = greeting["QMP"].get("version", {}).get("qemu", {})
        self.cmd("qmp_capabilities")

    def _read(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("QMP %s: no reply within %.0f s"
                              % (self.path, timeout))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise Failure("QMP %s: connection closed" % self.path)
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, timeout=120.0, **args):
        self.next_id += 1
        msg = {"execute": name, "id": self.next_id}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            resp = self._read(timeout)
            if "event" in resp:
                self.events.append(resp)
                continue
            if resp.get("id") != self.next_id:
                continue
            if "error" in resp:
                raise QMPError(name, resp["error"])
            if name == "migrate":
                QMP.migrations += 1
            return resp.get("return")

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def poll_events(self):
        """Collect events already sent (a cheap command flushes them)."""
        self.cmd("query-status")

    def take_events(self, name=None):
        got = [e for e in self.events if name is None or e["event"] == name]
        self.events = [e for e in self.events
                       if not (name is None or e["event"] == name)]
        return got

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Serial:
    """The guest's serial port (a socket chardev): everything it prints goes
    to a log file and is kept for matching; bytes can be sent to it."""

    def __init__(self, path, logpath, timeout=60.0):
        self.data = b""
        self.lock = threading.Lock()
        self.logf = open(logpath, "ab")
        self.sock = connect_unix(path, timeout, None, "serial")
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            with self.lock:
                self.data += data
            self.logf.write(data)
            self.logf.flush()

    def text(self):
        with self.lock:
            return self.data

    def send(self, data):
        self.sock.sendall(data)

    def mark(self):
        """An offset: progress(since=mark) ignores what came before."""
        with self.lock:
            return len(self.data)

    def progress(self, since=0):
        """Last (submitted, completed, wrong) progress line, or None."""
        m = None
        for m in PROGRESS_RE.finditer(self.text()[since:]):
            pass
        return tuple(int(x) for x in m.groups()) if m else None

    def streamed(self, since=0):
        """Stream FILLs submitted so far (last progress line), or None."""
        m = None
        for m in STREAMED_RE.finditer(self.text()[since:]):
            pass
        return int(m.group(1)) if m else None

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
        self.logf.close()


class VM:
    """One QEMU process: -S for a source (started with cont once the
    monitor and serial are connected), an incoming socket for a
    destination."""

    def __init__(self, opts, name, host, incoming=None):
        self.opts = opts
        self.name = name
        self.host = host
        d = opts.workdir
        # sockets stay off shared (9p) directories and short
        self.qmp_path = os.path.join(opts.sockdir, name + ".qmp")
        self.ser_path = os.path.join(opts.sockdir, name + ".serial")
        self.serial_log = os.path.join(d, name + ".serial.log")
        self.stderr_log = os.path.join(d, name + ".log")
        self.debugcon_log = os.path.join(d, name + ".debugcon.log")
        for p in (self.qmp_path, self.ser_path):
            if os.path.exists(p):
                os.unlink(p)
        # host: one BDF, or several joined by "+" (one guest, several
        # functions: QEMU then needs P2P from every device)
        devs = []
        if opts.backend == "iommufd":
            devs += ["-object", "iommufd,id=iommufd0"]
        for i, h in enumerate(host.split("+")):
            dev = "vfio-pci,host=%s,id=ra%d" % (h, i)
            if opts.backend == "iommufd":
                dev += ",iommufd=iommufd0"
            if opts.enable_migration:
                dev += ",enable-migration=%s" % opts.enable_migration
            dev += opts.vfio_opts
            devs += ["-device", dev]
        accel = "tcg"
        if opts.tb_size:
            accel += ",tb-size=%d" % opts.tb_size
        args = [opts.qemu, "-name", name, "-machine", "q35",
                "-accel", accel, "-m", opts.mem, "-smp", "1",
                "-nodefaults", "-display", "none", "-no-user-config"]
        args += FIRMWARE
        args += ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
                 "-chardev", "socket,id=ser0,path=%s,server=on,wait=off"
                 % self.ser_path,
                 "-serial", "chardev:ser0",
                 "-chardev", "file,id=dbg,path=%s" % self.debugcon_log,
                 "-device", "isa-debugcon,iobase=0x402,chardev=dbg",
                 "-boot", "strict=on"] + devs
        if opts.guest:
            args += ["-kernel", opts.guest, "-append", opts.append]
        for t in opts.trace + (TRACKING_TRACES if opts.dirty_tracking
                               else []):
            args += ["-trace", t]
        args += opts.extra
        args += opts.src_extra if incoming is None else opts.dst_extra
        if incoming is None:
            args.append("-S")
        elif opts.incoming == "direct":
            args += ["-incoming", incoming]
        else:
            args += ["-incoming", "defer"]
        self.incoming = incoming
        self.args = args
        log("%s: %s" % (name, " ".join(args)))
        self.errf = open(self.stderr_log, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.errf, stderr=self.errf)
        try:
            self.qmp = QMP(self.qmp_path, opts.boot_timeout, self.proc)
            self.serial = Serial(self.ser_path, self.serial_log)
        except (Failure, OSError):
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.errf.close()
            dump_log(self)
            raise
        ver = self.qmp.version
        log("%s: pid %d, QEMU %s.%s.%s, vfio-pci host=%s" % (
            name, self.proc.pid, ver.get("major"), ver.get("minor"),
            ver.get("micro"), host))

    def status(self):
        return self.qmp.cmd("query-status")["status"]

    def wait_status(self, want, timeout):
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure("%s exited with %s while waiting for %s"
                              % (self.name, self.proc.returncode, want))
            st = self.status()
            if st in want:
                return st
            time.sleep(0.2)
        raise Failure("%s: status %s, not %s after %.0f s"
                      % (self.name, st, "/".join(want), timeout))

    def wait_guest_running(self, since=0):
        """The guest runs and shows signs of life: a progress line from
        the guest workload (printed after serial offset since), or (idle
        SeaBIOS guest) the BIOS has finished with boot devices."""
        self.wait_status(("running",), self.opts.boot_timeout)
        deadline = time.monotonic() + self.opts.boot_timeout
        while time.monotonic() < deadline:
            if self.opts.guest:
                p = self.serial.progress(since)
                if p is not None and p[0] > 0:
                    return "progress %s" % (p,)
                # mode=nodev / mode=decodeoff: it never submits, it idles
                if HEARTBEAT_RE.search(self.serial.text()[since:]):
                    return "heartbeat"
            else:
                try:
                    with open(self.debugcon_log, "rb") as f:
                        t = f.read()
                except OSError:
                    t = b""
                if b"No bootable device" in t or b"Booting from" in t:
                    return "seabios done"
            if self.proc.poll() is not None:
                raise Failure("%s exited with %s during boot"
                              % (self.name, self.proc.returncode))
            time.sleep(0.5)
        raise Failure("%s: the guest shows no sign of life after %.0f s"
                      % (self.name, self.opts.boot_timeout))

    def set_caps(self, caps):
        if caps:
            self.qmp.cmd("migrate-set-capabilities", capabilities=[
                {"capability": c, "state": True} for c in caps])

    def set_params(self, params):
        if params:
            self.qmp.cmd("migrate-set-parameters", **params)

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
        self.proc.wait(60)

    def quit(self, timeout=60):
        if self.alive():
            try:
                self.qmp.cmd("quit", timeout=timeout)
            except (Failure, OSError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log("%s: no exit %d s after quit: SIGKILL" % (self.name,
                                                              timeout))
                self.proc.kill()
                self.proc.wait(60)
        self.close()

    def close(self):
        self.qmp.close()
        self.serial.close()
        self.errf.close()

    def stderr_text(self):
        try:
            with open(self.stderr_log, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def memory_use(*vms):
    """RSS of the QEMUs and what the VM has left."""
    out = []
    for vm in vms:
        try:
            with open("/proc/%d/status" % vm.proc.pid) as f:
                rss = [ln.split()[1] for ln in f if ln.startswith("VmRSS:")]
            out.append("%s RSS %s MiB" % (vm.name, int(rss[0]) // 1024))
        except (OSError, IndexError, ValueError):
            pass
    try:
        with open("/proc/meminfo") as f:
            avail = [ln.split()[1] for ln in f
                     if ln.startswith("MemAvailable:")]
        out.append("MemAvailable %s MiB" % (int(avail[0]) // 1024))
    except (OSError, IndexError, ValueError):
        pass
    return ", ".join(out)


REFACCEL_REG_TEST_FLAGS = 0x2000
REFACCEL_TEST_DT_LOSE = 1 << 3


def test_flags(bdf, clear=0):
    """Read TEST_FLAGS of function @bdf through its sysfs BAR0 (no VFIO
    user may hold the function), clear the @clear bits, return the value
    read back, as (before, after).  Memory decode is turned on for the
    access if it is off."""
    import mmap
    import struct
    d = "/sys/bus/pci/devices/%s" % bdf
    with open(d + "/config", "r+b", buffering=0) as cfg:
        cfg.seek(4)
        cmd = struct.unpack("<H", cfg.read(2))[0]
        if not cmd & 2:
            cfg.seek(4)
            cfg.write(struct.pack("<H", cmd | 2))
        try:
            with open(d + "/resource0", "r+b", buffering=0) as f:
                m = mmap.mmap(f.fileno(), REFACCEL_REG_TEST_FLAGS + 4096)
                try:
                    regs = memoryview(m).cast("I")
                    i = REFACCEL_REG_TEST_FLAGS // 4
                    v0 = regs[i]
                    if clear and v0 & clear:
                        regs[i] = v0 & ~clear
                    v = regs[i]
                    regs.release()
                finally:
                    m.close()
        finally:
            if not cmd & 2:
                cfg.seek(4)
                cfg.write(struct.pack("<H", cmd))
    return v0, v


def dump_text(vm, what, text, lines):
    text = text.splitlines()
    if not text:
        return
    log("--- %s %s (last %d of %d lines) ---" % (vm.name, what,
                                               min(lines, len(text)),
                                               len(text)))
    for ln in text[-lines:]:
        log("  " + ln)


def dump_log(vm, lines=60):
    dump_text(vm, "stderr", vm.stderr_text(), lines)


def dump_serial(vm, lines=12):
    """The guest's last words: its progress, and a timeout's register dump
    (STATUS, SQ_HEAD, CQ_TAIL) that tells a device that stopped working
    from completions that were written but never reached the guest."""
    dump_text(vm, "serial", vm.serial.text().decode(errors="replace"), lines)


class Lane:
    def __init__(self, opts):
        self.opts = opts
        self.vms = []
        self.failed = False
        self.seq = 0
        self.step = None        # the test a failure is reported under
        self.planned = []       # tests of the scenario not reported yet
        self.tracking = []      # per migration: what the source traced
        # called after every migration with (lane, label, src, dst, src
        # stderr offset, dst stderr offset, query-migrate reply)
        self.hooks = []
        q10.setup(self)

    # -- TAP-ish output --
    def plan(self, *names):
        """The tests a scenario reports, in order: a failure reports the
        current one as "not ok" and the rest as skipped, so the number of
        TAP lines does not depend on where a scenario fails."""
        self.planned = list(names)
        if self.opts.dirty_tracking:
            self.planned.append(self.tracking_test())
        self.planned += q10.planned_extra(self)
        if self.dt_lose():
            self.planned.append("dt-lose-cleared")
        self.step = self.planned[0]

    def result(self, name, ok, detail=""):
        if not ok:
            self.failed = True
        if name in self.planned:
            self.planned.remove(name)
        if self.planned:
            self.step = self.planned[0]
        if self.opts.label:
            name = "%s/%s" % (self.opts.label, name)
        print("%s - %s%s" % ("ok" if ok else "not ok", name,
                             " # " + detail if detail else ""), flush=True)

    # -- VMs --
    def new_vm(self, host, incoming=False):
        self.seq += 1
        role = "dst" if incoming else "src"
        name = "%s%d-%s" % (role, self.seq, host.replace(":", "_"))
        uri = None
        if incoming:
            sock = os.path.join(self.opts.sockdir, name + ".mig")
            if os.path.exists(sock):
                os.unlink(sock)
            uri = "unix:" + sock
        vm = VM(self.opts, name, host, uri)
        self.vms.append(vm)
        return vm

    def start_src(self, host):
        vm = self.new_vm(host)
        blocked = self.blockers(vm)
        vm.qmp.cmd("cont")
        how = vm.wait_guest_running()
        log("%s: guest running (%s)" % (vm.name, how))
        if blocked:
            log("%s: migration blocked: %s" % (vm.name, "; ".join(blocked)))
        return vm

    def start_dst(self, host, caps=(), params=None):
        vm = self.new_vm(host, incoming=True)
        vm.set_caps(caps)
        vm.set_params(params)
        if self.opts.incoming != "direct":
            vm.qmp.cmd("migrate-incoming", uri=vm.incoming)
        st = vm.status()
        log("%s: waiting for the stream on %s (status %s)"
            % (vm.name, vm.incoming, st))
        return vm

    def finish(self, vm):
        if vm in self.vms:
            self.vms.remove(vm)
        vm.quit()

    def cleanup(self):
        for vm in list(self.vms):
            if vm.alive():
                vm.kill()
            vm.close()
        self.vms = []

    @staticmethod
    def blockers(vm):
        info = vm.qmp.cmd("query-migrate")
        return info.get("blocked-reasons", []) or []

    # -- migration --
    def caps(self):
        caps = ["events"]
        if self.opts.switchover_ack:
            caps += ["return-path", "switchover-ack"]
        caps += self.opts.cap
        return caps

    def normal(self):
        """Parameters of a migration that is meant to complete.

        On a kernel without IOMMUFD (Debian's), QEMU has only the type1
        container's dirty tracking, and type1 reports every pinned page of
        a container whose device cannot say what it dirtied as dirty on
        every sync (vfio_iommu_type1.c update_user_bitmap()).  All guest RAM
        is pending again after each sync, so with the measured bandwidth
        the pre-copy never meets a 300 ms downtime limit.  Declaring the
        bandwidth available for the switchover makes QEMU switch over once
        one full pass is done (the downtime is then the time to send all
        RAM once more).
        """
        o = self.opts
        p = {"downtime-limit": o.downtime_limit,
             "max-bandwidth": o.max_bandwidth,
             "avail-switchover-bandwidth": o.switchover_bandwidth}
        return p

    def throttled(self):
        """A migration that lasts: slow, and a limit nothing meets."""
        return {"max-bandwidth": self.opts.throttle, "downtime-limit": 1,
                "avail-switchover-bandwidth": 0}

    def params(self, extra=None):
        p = self.normal()
        for kv in self.opts.param:
            k, v = kv.split("=", 1)
            p[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
        if extra:
            p.update(extra)
        return p

    def migrate(self, src, dst, label, params=None, until=None,
                on_progress=None):
        """Migrate src -> dst; poll query-migrate until a final state.

        until(info) -> True stops polling early (the caller acts on the
        migration itself, e.g. cancels it).  on_progress(info) is called on
        every poll.  Returns the last query-migrate reply, with "_statuses"
        (the statuses seen), "_max_vfio" and "_passes" added.
        """
        opts = self.opts
        caps = self.caps()
        src.set_caps(caps)
        src.set_params(self.params(params))
        blocked = self.blockers(src)
        if blocked:
            log("%s: blocked-reasons: %s" % (label, "; ".join(blocked)))
        before = src.serial.progress() if opts.guest else None
        err0 = len(src.stderr_text())
        derr0 = len(dst.stderr_text())
        t0 = time.monotonic()
        src.qmp.cmd("migrate", uri=dst.incoming)
        statuses = []
        info = {}
        max_vfio = 0
        last_report = t0
        while True:
            info = src.qmp.cmd("query-migrate")
            st = info.get("status", "none")
            if not statuses or statuses[-1] != st:
                statuses.append(st)
                log("%s: %.1f s: status %s" % (label, time.monotonic() - t0,
                                               st))
            if "vfio" in info:
                max_vfio = max(max_vfio, info["vfio"].get("transferred", 0))
            now = time.monotonic()
            if now - last_report >= opts.report_every:
                last_report = now
                ram = info.get("ram", {})
                log("%s: %.1f s: %s, ram transferred %s remaining %s, "
                    "dirty syncs %s, vfio %s, expected downtime %s ms"
                    % (label, now - t0, st, ram.get("transferred"),
                       ram.get("remaining"), ram.get("dirty-sync-count"),
                       info.get("vfio", {}).get("transferred"),
                       info.get("expected-downtime")))
            if on_progress:
                on_progress(info)
            if st in ("completed", "failed", "cancelled"):
                break
            if until and until(info):
                break
            if time.monotonic() - t0 > opts.migrate_timeout:
                raise Failure("%s: still %s after %.0f s" % (
                    label, st, opts.migrate_timeout))
            time.sleep(opts.poll)
        info["_statuses"] = statuses
        info["_max_vfio"] = max_vfio
        info["_progress_before"] = before
        info["_wall"] = time.monotonic() - t0
        src.qmp.poll_events()
        passes = src.qmp.take_events("MIGRATION_PASS")
        info["_passes"] = max([e["data"]["pass"] for e in passes] or [0])
        if opts.dirty_tracking:
            self.note_tracking(label, src, err0, info)
        for hook in self.hooks:
            hook(self, label, src, dst, err0, derr0, info)
        return info

    # -- which dirty tracking QEMU used --
    def tracking_test(self):
        return {"device": "device-dirty-tracking",
                "type1": "type1-dirty-tracking"}[self.opts.dirty_tracking]

    def note_tracking(self, label, src, err0, info):
        """What the source QEMU traced about dirty tracking during one
        migration (its stderr from the migrate command on)."""
        text = src.stderr_text()
        t = {"label": label, "status": info.get("status"), "start": 0,
             "bitmaps": 0, "dirty_pages": 0, "iommu_dirty": 0,
             "backend": set(), "hwpt_flags": set()}
        for m in TRACE_LINE_RE.finditer(text):
            ev, rest = m.group(1), m.group(2)
            if ev == "vfio_attach_device":
                t["backend"].add("container")
            elif ev == "iommufd_cdev_getfd":
                t["backend"].add("iommufd")
            elif ev == "iommufd_backend_alloc_hwpt":
                f = re.search(r"flags=(0x[0-9a-f]+)", rest)
                t["hwpt_flags"].add(f.group(1) if f else "?")
            if m.start() < err0:
                continue        # boot time: backend and HWPT only
            if ev == "vfio_device_dirty_tracking_start":
                t["start"] += 1
            elif ev == "vfio_get_dirty_bitmap":
                t["bitmaps"] += 1
                d = re.search(r"dirty_pages=(\d+)", rest)
                t["dirty_pages"] += int(d.group(1)) if d else 0
            elif ev in ("iommufd_backend_set_dirty",
                        "iommufd_backend_get_dirty_bitmap"):
                t["iommu_dirty"] += 1
        t["no_tracking_warning"] = NO_TRACKING_MSG in text
        t["backend"] = "+".join(sorted(t["backend"])) or "?"
        t["hwpt_flags"] = ",".join(sorted(t["hwpt_flags"])) or "-"
        log("%s: dirty tracking: backend %s (HWPT flags %s), device DMA "
            "logging started %d time(s), %d dirty bitmaps fetched (%d dirty "
            "pages), %d IOMMUFD dirty-tracking calls%s" % (
                label, t["backend"], t["hwpt_flags"], t["start"],
                t["bitmaps"], t["dirty_pages"], t["iommu_dirty"],
                ", QEMU warned: " + NO_TRACKING_MSG
                if t["no_tracking_warning"] else ""))
        log("metric: %s dirty-tracking backend=%s dma-logging-starts=%d "
            "bitmaps=%d dirty-pages=%d iommufd-dirty=%d" % (
                label, t["backend"], t["start"], t["bitmaps"],
                t["dirty_pages"], t["iommu_dirty"]))
        self.tracking.append(t)

    def check_tracking(self):
        """Every migration of the scenario used the expected dirty
        tracking: device (the driver's DMA logging: started, bitmaps
        fetched, no IOMMUFD dirty tracking, no "doesn't support" warning)
        or type1 (the container's: bitmaps fetched, no DMA logging)."""
        want = self.opts.dirty_tracking
        name = self.tracking_test()
        if not self.tracking:
            self.result(name, True, "SKIP no migration in this scenario")
            return
        bad = []
        for t in self.tracking:
            why = []
            if t["bitmaps"] < 1:
                why.append("no dirty bitmap fetched")
            if t["iommu_dirty"]:
                why.append("IOMMUFD dirty tracking used")
            if want == "device":
                if t["start"] < 1:
                    why.append("device DMA logging never started")
                if t["no_tracking_warning"]:
                    why.append("QEMU says the device has no dirty tracking")
                if t["backend"] != self.opts.backend:
                    why.append("backend %s, not %s" % (t["backend"],
                                                       self.opts.backend))
            else:
                if t["start"]:
                    why.append("device DMA logging started")
                if t["backend"] != "container":
                    why.append("backend %s" % t["backend"])
            if why:
                bad.append("%s: %s" % (t["label"], ", ".join(why)))
        self.result(name, not bad, "; ".join(bad) or "%d migration(s), "
                    "backend %s, %d DMA logging start(s), %d bitmaps" % (
                        len(self.tracking), self.tracking[0]["backend"],
                        sum(t["start"] for t in self.tracking),
                        sum(t["bitmaps"] for t in self.tracking)))

    def report(self, label, info):
        ram = info.get("ram", {})
        vals = [
            ("status", info.get("status")),
            ("statuses", ">".join(info.get("_statuses", []))),
            ("total-time-ms", info.get("total-time")),
            ("downtime-ms", info.get("downtime")),
            ("setup-time-ms", info.get("setup-time")),
            ("expected-downtime-ms", info.get("expected-downtime")),
            ("ram-transferred", ram.get("transferred")),
            ("ram-total", ram.get("total")),
            ("ram-precopy-bytes", ram.get("precopy-bytes")),
            ("ram-downtime-bytes", ram.get("downtime-bytes")),
            ("ram-normal-pages", ram.get("normal")),
            ("ram-zero-pages", ram.get("duplicate")),
            ("ram-dirty-sync-count", ram.get("dirty-sync-count")),
            ("migration-passes", info.get("_passes")),
            ("vfio-transferred", info.get("vfio", {}).get("transferred")),
            ("vfio-transferred-max-seen", info.get("_max_vfio")),
        ]
        log("%s: %s" % (label, " ".join("%s=%s" % (k, v) for k, v in vals
                                        if v is not None)))
        if info.get("blocked-reasons"):
            log("%s: blocked-reasons: %s" % (label,
                                             "; ".join(info["blocked-reasons"])))
        if info.get("error-desc"):
            log("%s: error-desc: %s" % (label, info["error-desc"]))
        if info.get("status") == "completed":
            log("metric: %s total-time-ms=%s downtime-ms=%s setup-time-ms=%s "
                "vfio-bytes=%s ram-bytes=%s dirty-syncs=%s" % (
                    label, info.get("total-time"), info.get("downtime"),
                    info.get("setup-time"),
                    info.get("vfio", {}).get("transferred"),
                    ram.get("transferred"), ram.get("dirty-sync-count")))

    def check_completed(self, label, src, dst, info):
        self.report(label, info)
        if info.get("status") != "completed":
            dump_log(src)
            dump_log(dst)
            raise Failure("%s: migration %s: %s" % (
                label, info.get("status"), info.get("error-desc", "")))
        moved = info.get("vfio", {}).get("transferred", 0)
        if not moved:
            raise Failure("%s: completed, but the vfio device did not move "
                          "(vfio transferred %s)" % (label, moved))
        st = dst.wait_status(("running",), self.opts.boot_timeout)
        sst = src.status()
        log("%s: destination %s, source %s; %s" % (label, st, sst,
                                                  memory_use(src, dst)))
        if self.expect_corruption():
            log("%s: mode=dtlose with device dirty tracking: the "
                "destination may stall on completions it never got" % label)
        elif self.drives_device():
            self.check_dst_progress(label, src, dst, info)
        for vm in (src, dst):
            self.show_errors(label, vm)

    @staticmethod
    def show_errors(label, vm, last=10):
        """QEMU's own messages (error_report/warn_report), not traces."""
        msgs = [ln for ln in vm.stderr_text().splitlines()
                if ln.startswith("qemu-system-") or ln.startswith("0000:")]
        for ln in msgs[-last:]:
            log("%s: %s says: %s" % (label, vm.name, ln))

    def check_dst_progress(self, label, src, dst, info):
        before = src.serial.progress()
        deadline = time.monotonic() + self.opts.boot_timeout
        after = None
        while time.monotonic() < deadline:
            after = dst.serial.progress()
            if after and before and after[1] > before[1]:
                break
            time.sleep(0.5)
        log("%s: guest descriptors completed before switchover (source "
            "log) %s, after (destination log) %s" % (
                label, before and before[1], after and after[1]))
        log("metric: %s guest-completed-before=%s guest-completed-after=%s"
            % (label, before and before[1], after and after[1]))
        if not after or not before or after[1] <= before[1]:
            dump_serial(src)
            dump_serial(dst)
            raise Failure("%s: the guest makes no progress on the "
                          "destination" % label)

    def guest_verdict(self, vm):
        """Ask the guest workload to drain and verify ('q'); its verdict."""
        vm.serial.send(b"q")
        deadline = time.monotonic() + self.opts.boot_timeout
        while time.monotonic() < deadline:
            t = vm.serial.text()
            m = VERDICT_RE.search(t)
            if m:
                s = SUMMARY_RE.search(t)
                if s:
                    log("%s: guest: %s submitted, %s completed, %s wrong" % (
                        vm.name, *(x.decode() for x in s.groups())))
                return m.group(1).decode()
            time.sleep(0.5)
        return None

    def verdict_test(self, name):
        if self.expect_corruption():
            return name + "-guest-detects-lost-writes"
        return name + "-guest-verdict"

    def verdicts(self, name):
        return [self.verdict_test(name)] if self.opts.guest else []

    def dt_lose(self):
        """The workload sets REFACCEL_TEST_DT_LOSE: the device's DMA dirty
        tracker misses every write the device makes (negative control)."""
        return bool(self.opts.guest) and \
            "mode=dtlose" in self.opts.append.split()

    def expect_corruption(self):
        """Lost device writes show on the destination only when QEMU
        relies on the device's tracker; type1 reports every pinned page
        dirty, so the same guest must then pass."""
        return self.dt_lose() and self.opts.dirty_tracking == "device"

    def end_guest(self, vm, name):
        if not self.opts.guest:
            return
        v = self.guest_verdict(vm)
        st = STREAM_RE.search(vm.serial.text())
        st = tuple(int(x) for x in st.groups()) if st else None
        if st:
            log("%s: guest stream: %d pages, %d FILLs, %d checks, %d bad "
                "(%d at the end), %d unfinished" % ((vm.name,) + st))
            log("metric: %s stream-fills=%d stream-checks=%d stream-bad=%d"
                % (name, st[1], st[2], st[3]))
        if not self.expect_corruption():
            self.result(name + "-guest-verdict", v == "PASS",
                        v or "no verdict")
            return
        # the negative control passes only if the stream check caught it
        ok = bool(v) and v.startswith("FAIL") and bool(st) and st[3] > 0
        self.result(self.verdict_test(name), ok, "%s; stream %s" % (
            v or "no verdict", "%d of %d checks bad" % (st[3], st[2])
            if st else "line missing"))

    def clear_dt_lose(self):
        """No later scenario may run with a lying tracker: check that
        DT_LOSE is off on every function of the scenario once its QEMUs
        are gone (the function reset on close clears TEST_FLAGS already),
        and clear it through sysfs if not."""
        bdfs = self.opts.host_a.split("+") + self.opts.host_b.split("+")
        left = []
        for bdf in bdfs:
            try:
                v0, v = test_flags(bdf, clear=REFACCEL_TEST_DT_LOSE)
            except OSError as e:
                left.append("%s: %s" % (bdf, e))
                continue
            log("%s: TEST_FLAGS 0x%x, now 0x%x" % (bdf, v0, v))
            if v & REFACCEL_TEST_DT_LOSE:
                left.append("%s: TEST_FLAGS 0x%x" % (bdf, v))
        self.result("dt-lose-cleared", not left, "; ".join(left))

    def drives_device(self):
        """The guest submits work (not an idle SeaBIOS guest, not the
        workload's mode=nodev or mode=decodeoff)."""
        idle = ("mode=nodev", "mode=decodeoff")
        return bool(self.opts.guest) and \
            not any(m in self.opts.append.split() for m in idle)

    def check_src_survives(self, label, src, seconds, what="the failure"):
        st = src.wait_status(("running",), self.opts.boot_timeout)
        p0 = src.serial.progress() if self.drives_device() else None
        time.sleep(seconds)
        st = src.status()
        if st != "running":
            raise Failure("%s: source %s after %s" % (label, st, what))
        if self.drives_device():
            p1 = src.serial.progress()
            log("%s: source guest progress %s -> %s" % (label, p0, p1))
            if not p0 or not p1 or p1[1] <= p0[1]:
                raise Failure("%s: the source guest stopped making progress"
                              % label)
        if not src.alive():
            raise Failure("%s: source QEMU died" % label)
        log("%s: source still %s %d s after %s" % (label, st, seconds,
                                                   what))

    def migrate_checked(self, src, dst, name, label):
        """Migrate @src to @dst (reported as @label), check that it
        completed and the device moved, and report test @name."""
        info = self.migrate(src, dst, label)
        self.check_completed(name, src, dst, info)
        self.result(name, True, "downtime %s ms, vfio %s bytes" % (
            info.get("downtime"), info.get("vfio", {}).get("transferred")))
        return info

    def wait_migration_end(self, src, name, what):
        """Poll query-migrate on @src until the migration is over."""
        t0 = time.monotonic()
        while True:
            info = src.qmp.cmd("query-migrate")
            if info.get("status") in ("cancelled", "failed", "completed"):
                return info
            if time.monotonic() - t0 > self.opts.migrate_timeout:
                raise Failure("%s: migration still %s %s" % (
                    name, info.get("status"), what))
            time.sleep(self.opts.poll)

    # -- scenarios --
    def sc_migrate(self, back=False):
        o = self.opts
        self.plan("migrate-A-to-B", *(["migrate-B-to-A"] if back else []),
                  *self.verdicts("migrate-B-to-A" if back
                                 else "migrate-A-to-B"))
        src = self.start_src(o.host_a)
        dst = self.start_dst(o.host_b, self.caps())
        name = "migrate-%s-to-%s" % ("A", "B")
        self.migrate_checked(src, dst, name, name)
        self.finish(src)
        if not back:
            self.end_guest(dst, name)
            self.finish(dst)
            return
        # The old destination on B becomes the source; A is free again.
        src = dst
        dst = self.start_dst(o.host_a, self.caps())
        name = "migrate-B-to-A"
        self.migrate_checked(src, dst, name, name)
        self.finish(src)
        self.end_guest(dst, name)
        self.finish(dst)

    def sc_pingpong(self):
        self.sc_migrate(back=True)

    def sc_precopy_iters(self):
        """Force several pre-copy iterations: a downtime limit nothing can
        meet, then, once N dirty syncs happened, one that can be met."""
        o = self.opts
        self.plan("precopy-iterations",
                  *(["stream-during-precopy"] if o.stream_iterations
                    else []), *self.verdicts("precopy-iterations"))
        src = self.start_src(o.host_a)
        dst = self.start_dst(o.host_b, self.caps())
        name = "precopy-iterations"
        # intervals between two dirty syncs (as the polls saw them) in
        # which the guest's device wrote new stream FILLs (source serial
        # log): the stream count is sampled at each poll that sees a new
        # sync, and compared with the one at the previous such poll.  (Two
        # syncs may be seconds apart on a slow kernel, far more than one
        # poll, so one poll interval holding both says nothing.)
        state = {"relaxed": False, "syncs": 0, "streamed": None,
                 "intervals": 0, "fills": 0}

        def relax(info):
            syncs = info.get("ram", {}).get("dirty-sync-count", 0)
            if o.stream_iterations and info.get("status") == "active":
                streamed = src.serial.streamed()
                if streamed is not None and syncs > state["syncs"]:
                    if (state["streamed"] is not None and
                            streamed > state["streamed"]):
                        state["intervals"] += 1
                        state["fills"] += streamed - state["streamed"]
                        log("%s: dirty syncs %d -> %d, stream FILLs %d -> %d"
                            % (name, state["syncs"], syncs,
                               state["streamed"], streamed))
                    state["syncs"] = syncs
                    state["streamed"] = streamed
            if not state["relaxed"] and syncs >= o.iterations and \
                    state["intervals"] >= o.stream_iterations:
                log("%s: %d dirty syncs: now %s" % (name, syncs,
                                                    self.normal()))
                src.set_params(self.normal())
                state["relaxed"] = True

        info = self.migrate(src, dst, name,
                            params={"downtime-limit": 1,
                                    "max-bandwidth": o.max_bandwidth,
                                    "avail-switchover-bandwidth": 0},
                            on_progress=relax)
        self.check_completed(name, src, dst, info)
        syncs = info.get("ram", {}).get("dirty-sync-count", 0)
        ok = syncs >= o.iterations
        self.result(name, ok, "%s dirty syncs, downtime %s ms" % (
            syncs, info.get("downtime")))
        if o.stream_iterations:
            log("metric: %s stream-intervals=%d stream-fills-precopy=%d" % (
                name, state["intervals"], state["fills"]))
            # The target of N intervals only delays the relaxed limit:
            # QEMU switches over whenever nothing is pending, and how much
            # a nested TCG guest writes between two polls depends on the
            # load.  What must hold is that device writes landed between
            # dirty syncs at least once, and the destination's check.
            self.result("stream-during-precopy", state["intervals"] >= 1,
                        "%d dirty-sync intervals (target %d) with new device "
                        "stream writes (%d FILLs of 4 KiB)" % (
                            state["intervals"], o.stream_iterations,
                            state["fills"]))
        self.finish(src)
        self.end_guest(dst, name)
        self.finish(dst)

    def mid_transfer(self, info):
        """Well into the transfer: the device's pre-copy data is in the
        stream (--interrupt-at vfio, the default) or some RAM is (ram)."""
        if info.get("status") not in ("active", "pre-switchover",
                                      "device"):
            return False
        ram = info.get("ram", {}).get("transferred", 0)
        vfio = info.get("vfio", {}).get("transferred", 0)
        if self.opts.interrupt_at == "vfio":
            return vfio > 0
        return ram > 64 * 1024

    def sc_cancel_retry(self):
        o = self.opts
        self.plan("cancel-then-retry", *self.verdicts("cancel-then-retry"))
        src = self.start_src(o.host_a)
        dst = self.start_dst(o.host_b, self.caps())
        name = "cancel-then-retry"
        info = self.migrate(src, dst, name + "(1)", params=self.throttled(),
                            until=self.mid_transfer)
        self.report(name + "(1) at cancel", info)
        if info.get("status") in ("completed", "failed"):
            raise Failure("%s: migration %s before it could be cancelled"
                          % (name, info.get("status")))
        src.qmp.cmd("migrate_cancel")
        t0 = time.monotonic()
        info = self.wait_migration_end(src, name, "after migrate_cancel")
        log("%s: after migrate_cancel: %s in %.1f s" % (
            name, info.get("status"), time.monotonic() - t0))
        if info.get("status") != "cancelled":
            raise Failure("%s: status %s after migrate_cancel" % (
                name, info.get("status")))
        self.check_src_survives(name, src, o.survive_seconds)
        # The destination saw a torn stream: it exits (or is killed).
        try:
            dst.proc.wait(o.boot_timeout)
            log("%s: destination exited with %s" % (name, dst.proc.returncode))
        except subprocess.TimeoutExpired:
            log("%s: destination still up after the cancel (%s): killed"
                % (name, dst.status()))
            dst.kill()
        self.show_errors(name, dst, 5)
        self.vms.remove(dst)
        dst.close()
        dst = self.start_dst(o.host_b, self.caps())
        self.migrate_checked(src, dst, name, name + "(2)")
        self.finish(src)
        self.end_guest(dst, name)
        self.finish(dst)

    def sc_kill_dst(self):
        o = self.opts
        self.plan("dst-sigkill-source-survives",
                  *(["dst-sigkill-then-migrate"] if o.retry_after_kill
                    else []), *self.verdicts("dst-sigkill"))
        src = self.start_src(o.host_a)
        dst = self.start_dst(o.host_b, self.caps())
        name = "dst-sigkill"
        info = self.migrate(src, dst, name, params=self.throttled(),
                            until=self.mid_transfer)
        self.report(name + " at kill", info)
        if info.get("status") in ("completed", "failed", "cancelled"):
            raise Failure("%s: migration %s before the kill" % (
                name, info.get("status")))
        dst.kill(signal.SIGKILL)
        log("%s: destination SIGKILLed (exit %s)" % (name,
                                                     dst.proc.returncode))
        self.vms.remove(dst)
        dst.close()
        t0 = time.monotonic()
        info = self.wait_migration_end(src, name, "after the kill")
        log("%s: source migration %s %.1f s after the kill: %s" % (
            name, info.get("status"), time.monotonic() - t0,
            info.get("error-desc", "")))
        if info.get("status") != "failed":
            raise Failure("%s: source migration %s, not failed" % (
                name, info.get("status")))
        self.check_src_survives(name, src, o.survive_seconds)
        self.result(name + "-source-survives", True,
                    "source running after the destination died")
        if o.retry_after_kill:
            dst = self.start_dst(o.host_b, self.caps())
            info = self.migrate(src, dst, name + "-retry")
            self.check_completed(name + "-retry", src, dst, info)
            self.result(name + "-then-migrate", True,
                        "downtime %s ms, vfio %s bytes" % (
                            info.get("downtime"),
                            info.get("vfio", {}).get("transferred")))
            self.finish(src)
            self.end_guest(dst, name)
            self.finish(dst)
        else:
            self.end_guest(src, name)
            self.finish(src)

    def sc_stop_cont(self):
        o = self.opts
        self.plan("stop-cont", *self.verdicts("stop-cont"))
        src = self.start_src(o.host_a)
        name = "stop-cont"
        t0 = time.monotonic()
        for i in range(o.loops):
            src.qmp.cmd("stop")
            src.wait_status(("paused",), 60)
            src.qmp.cmd("cont")
            src.wait_status(("running",), 60)
        log("%s: %d stop/cont loops in %.1f s" % (name, o.loops,
                                                   time.monotonic() - t0))
        self.check_src_survives(name, src, o.survive_seconds, "the loops")
        self.result(name, True, "%d loops" % o.loops)
        self.end_guest(src, name)
        self.finish(src)

    def sc_reset(self):
        o = self.opts
        self.plan("system-reset", *self.verdicts("system-reset"))
        src = self.start_src(o.host_a)
        name = "system-reset"
        for i in range(o.loops):
            if not o.guest:
                open(src.debugcon_log, "wb").close()
            mark = src.serial.mark()
            src.qmp.cmd("system_reset")
            how = src.wait_guest_running(mark)
            log("%s: reset %d: guest running again (%s)" % (name, i + 1,
                                                             how))
        dst = self.start_dst(o.host_b, self.caps())
        info = self.migrate(src, dst, name + "-then-migrate")
        self.check_completed(name + "-then-migrate", src, dst, info)
        self.result(name, True, "%d resets, then migrated" % o.loops)
        self.finish(src)
        self.end_guest(dst, name)
        self.finish(dst)

    def sc_refused(self):
        """The device is not migratable (its driver offers no migration):
        with enable-migration=auto QEMU must say so and refuse to migrate,
        and nothing else may happen to the source (no hang, no reset)."""
        o = self.opts
        name = "migrate-refused"
        self.plan("migration-blocked", name, name + "-source-survives",
                  *self.verdicts(name), "qemu-quits")
        src = self.start_src(o.host_a)
        dst = self.start_dst(o.host_b, self.caps())
        want = ["%s: %s" % (h, o.expect_blocker)
                for h in o.host_a.split("+")]
        # query-migrate names the blocker before any migration is tried
        blocked = self.blockers(src)
        missing = [w for w in want if w not in blocked]
        self.result("migration-blocked", not missing, "; ".join(
            ["blocked-reasons: %s" % ("; ".join(blocked) or "none")] +
            ["missing '%s'" % w for w in missing]))
        src.set_caps(self.caps())
        src.set_params(self.params())
        before = src.serial.progress() if self.drives_device() else None
        t0 = time.monotonic()
        err = None
        try:
            src.qmp.cmd("migrate", timeout=o.refuse_timeout,
                        uri=dst.incoming)
        except QMPError as e:
            err = e.err
        took = time.monotonic() - t0
        info = src.qmp.cmd("query-migrate", timeout=o.refuse_timeout)
        st = info.get("status", "none")
        dst_st = dst.status()
        desc = err.get("desc", "") if err else ""
        log("%s: migrate answered in %.2f s: %s" % (
            name, took, "error %s: %s" % (err.get("class"), desc) if err
            else "accepted"))
        log("%s: source migration status %s, destination %s" % (
            name, st, dst_st))
        why = []
        if err is None:
            why.append("the migrate command was accepted")
        elif not any(w in desc for w in want):
            why.append("its error does not name the blocker '%s'" % want[0])
        if st not in ("none", "failed"):
            why.append("source migration status %s" % st)
        if dst_st != "inmigrate":
            why.append("destination %s, not still waiting" % dst_st)
        if why:
            self.report(name, info)
            raise Failure("%s: %s" % (name, "; ".join(why)))
        self.result(name, True, "QEMU: %s (%s, %.2f s; status %s, "
                    "destination %s)" % (desc, err.get("class"), took,
                                         st, dst_st))
        self.check_src_survives(name, src, o.survive_seconds,
                                "the refused migrate")
        if self.drives_device():
            p = src.serial.progress()
            log("%s: source guest completed %s before the migrate, %s now"
                % (name, before and before[1], p and p[1]))
        self.result(name + "-source-survives", True,
                    "running %d s after the refused migrate, guest "
                    "progressing" % o.survive_seconds if self.drives_device()
                    else "running %d s after the refused migrate"
                    % o.survive_seconds)
        self.show_errors(name, src)
        self.end_guest(src, name)
        # neither QEMU may hang on its way out: quit, no SIGKILL needed
        slow = []
        for vm in (src, dst):
            t1 = time.monotonic()
            self.vms.remove(vm)
            try:
                vm.qmp.cmd("quit", timeout=o.refuse_timeout)
            except (Failure, OSError) as e:
                slow.append("%s: quit: %s" % (vm.name, e))
            try:
                vm.proc.wait(o.refuse_timeout)
                log("%s: exited with %s %.1f s after quit" % (
                    vm.name, vm.proc.returncode, time.monotonic() - t1))
            except subprocess.TimeoutExpired:
                slow.append("%s: still up %.0f s after quit (SIGKILLed)"
                            % (vm.name, o.refuse_timeout))
                vm.kill()
            vm.close()
        self.result("qemu-quits", not slow, "; ".join(slow) or
                    "source and destination exited on quit")

    def sc_probe(self):
        """Boot on A, print HMP output, try one migration (diagnostics)."""
        o = self.opts
        self.plan("probe-migrate")
        src = self.start_src(o.host_a)
        for line in o.hmp or ["info pci", "info mtree -f"]:
            out = src.qmp.hmp(line)
            log("--- hmp '%s' ---" % line)
            for ln in out.splitlines():
                log("  " + ln)
        dst = self.start_dst(o.host_b, self.caps())
        info = self.migrate(src, dst, "probe")
        self.report("probe", info)
        ok = info.get("status") == "completed"
        if ok:
            dst.wait_status(("running",), o.boot_timeout)
        self.result("probe-migrate", ok, info.get("error-desc", ""))
        dump_log(src, 200)
        dump_log(dst, 200)
        self.finish(src)
        self.finish(dst)


SCENARIOS = {
    "migrate": Lane.sc_migrate,
    "pingpong": Lane.sc_pingpong,
    "precopy-iters": Lane.sc_precopy_iters,
    "cancel-retry": Lane.sc_cancel_retry,
    "kill-dst": Lane.sc_kill_dst,
    "stop-cont": Lane.sc_stop_cont,
    "reset": Lane.sc_reset,
    "refused": Lane.sc_refused,
    "probe": Lane.sc_probe,
}
q10.bind(sys.modules[__name__])
SCENARIOS.update(q10.SCENARIOS)
stress.bind(sys.modules[__name__])
SCENARIOS.update(stress.SCENARIOS)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--qemu", default="/usr/bin/qemu-system-x86_64")
    ap.add_argument("--host-a", required=True, help="BDF of function A")
    ap.add_argument("--host-b", required=True, help="BDF of function B")
    ap.add_argument("--guest", default="",
                    help="multiboot guest (-kernel); default: idle SeaBIOS")
    ap.add_argument("--append", default="count=0")
    ap.add_argument("--mem", default="128M")
    ap.add_argument("--tb-size", type=int, default=64,
                    help="TCG translation buffer, MiB (0: QEMU default)")
    ap.add_argument("--enable-migration", default="on",
                    help="vfio-pci enable-migration= (on, auto, off, '')")
    ap.add_argument("--backend", choices=("container", "iommufd"),
                    default="container",
                    help="VFIO backend: the legacy container (host= "
                    "only), or -object iommufd + iommufd= on the device")
    ap.add_argument("--dirty-tracking", choices=("", "device", "type1"),
                    default="",
                    help="trace QEMU's dirty tracking and check that every "
                    "migration used this one (test device-dirty-tracking "
                    "or type1-dirty-tracking)")
    ap.add_argument("--vfio-opts", default="",
                    help="more ',prop=val' for -device vfio-pci")
    ap.add_argument("--extra", action="append", default=[],
                    help="extra QEMU argument for both (repeatable)")
    ap.add_argument("--src-extra", action="append", default=[])
    ap.add_argument("--dst-extra", action="append", default=[])
    ap.add_argument("--trace", action="append", default=[],
                    help="-trace PATTERN for both QEMUs (log backend: "
                    "stderr, in NAME.log)")
    ap.add_argument("--hmp", action="append", default=[],
                    help="probe: HMP command to print (repeatable)")
    ap.add_argument("--incoming", choices=("defer", "direct"),
                    default="defer",
                    help="destination: -incoming defer + migrate-incoming "
                    "(lets capabilities be set first), or -incoming URI")
    ap.add_argument("--no-switchover-ack", dest="switchover_ack",
                    action="store_false",
                    help="do not set return-path + switchover-ack")
    ap.add_argument("--cap", action="append", default=[],
                    help="more migration capabilities to enable")
    ap.add_argument("--param", action="append", default=[],
                    help="migrate-set-parameters NAME=VALUE (repeatable)")
    ap.add_argument("--throttle", type=int, default=128 * 1024,
                    help="max-bandwidth (bytes/s) while a migration must "
                    "last (cancel, kill, precopy-iters)")
    ap.add_argument("--max-bandwidth", type=int, default=1 << 30)
    ap.add_argument("--downtime-limit", type=int, default=300)
    ap.add_argument("--switchover-bandwidth", type=int, default=1 << 30,
                    help="avail-switchover-bandwidth (bytes/s) of a "
                    "migration meant to complete, 0: QEMU measures it; "
                    "see Lane.normal()")
    ap.add_argument("--iterations", type=int, default=4,
                    help="precopy-iters: dirty syncs before switchover")
    ap.add_argument("--stream-iterations", type=int, default=0,
                    help="precopy-iters: also wait for N polls that saw "
                    "both new dirty syncs and new device stream writes "
                    "of the guest (test stream-during-precopy)")
    ap.add_argument("--interrupt-at", choices=("vfio", "ram"),
                    default="vfio",
                    help="cancel-retry, kill-dst: act once the device's "
                    "data (vfio) or 64 KiB of RAM (ram) is in the stream")
    ap.add_argument("--expect-blocker",
                    default="VFIO migration is not supported in kernel",
                    help="refused: the blocker QEMU must report for each "
                    "device, after its 'BDF: ' (hw/vfio/migration.c: the "
                    "driver offers no migration, VFIO_DEVICE_FEATURE_"
                    "MIGRATION answers ENOTTY)")
    ap.add_argument("--refuse-timeout", type=float, default=30,
                    help="refused: seconds QEMU may take to answer migrate, "
                    "query-migrate or quit")
    ap.add_argument("--loops", type=int, default=5)
    ap.add_argument("--survive-seconds", type=int, default=5)
    ap.add_argument("--retry-after-kill", action="store_true", default=True)
    ap.add_argument("--no-retry-after-kill", dest="retry_after_kill",
                    action="store_false")
    ap.add_argument("--boot-timeout", type=float, default=180)
    ap.add_argument("--migrate-timeout", type=float, default=900)
    ap.add_argument("--poll", type=float, default=0.25)
    ap.add_argument("--report-every", type=float, default=15,
                    help="seconds between progress lines of a migration")
    q10.add_options(ap)
    stress.add_options(ap)
    ap.add_argument("--workdir", default="")
    ap.add_argument("--label", default="",
                    help="prefix of every test name (LABEL/name)")
    opts = ap.parse_args()
    if not opts.workdir:
        opts.workdir = tempfile.mkdtemp(prefix="qemu-lane.")
    os.makedirs(opts.workdir, exist_ok=True)
    opts.sockdir = tempfile.mkdtemp(prefix="qemu-lane-sock.")
    log("workdir %s" % opts.workdir)

    lane = Lane(opts)
    try:
        SCENARIOS[opts.scenario](lane)
        if opts.dirty_tracking and not lane.skipped:
            lane.check_tracking()
        q10.finish_checks(lane)
    except (Failure, QMPError, OSError, subprocess.SubprocessError) as e:
        failed = lane.step or opts.scenario
        lane.result(failed, False, str(e))
        for vm in lane.vms:
            dump_log(vm)
        for name in list(lane.planned):
            if name != "dt-lose-cleared":
                lane.result(name, True, "SKIP after %s failed" % failed)
    finally:
        lane.cleanup()
        if lane.dt_lose():
            lane.clear_dt_lose()
        log("migrations started: %d" % QMP.migrations)
    return 1 if lane.failed else 0


if __name__ == "__main__":
    sys.exit(main())
