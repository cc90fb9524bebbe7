#!/usr/bin/env python3
"""triage.py: whose bug is each failing input a fuzz target found?

    triage.py [--known FILE] [--timeout S] EXE INPUT...

Runs EXE (a libFuzzer target of tests/fuzz) on each INPUT once, with full
stacks, and sorts what happens into
    mpifit   the failure is in mpifit's code, or a library overran a buffer
             mpifit sized, or an oracle of the harness fired (fuzz_common.h),
             or mpifit's own loop ran out of time or asked for too much
             memory: a bug to fix;
    pending  like mpifit, but its signature matches a `pending` line of
             --known: a bug found before, reported, not fixed yet;
    hdf5     inside libhdf5 on a malformed file (its own memory, its own
             allocations, one of its calls that never returns), or matching
             an `hdf5` line of --known: HDF5 1.10's bug, not ours;
    jpeglib  the same inside libjpeg-turbo;
    no-repro the input runs clean alone: a timeout on a loaded machine, or
             (mostly) a leak in libhdf5 that lsan_hdf5.supp suppresses once the
             stack is whole (fuzzing unwinds fast, which stops at libhdf5).
One line per input: CLASS SIGNATURE INPUT. Exit status 1 if any input is
`mpifit`, else 0. The signature is what --known lines match (Python regular
expressions, searched; `pending REGEX` or `hdf5 REGEX`, # comments): kind |
first frame that is not the sanitizer runtime | innermost mpifit frame.
A timeout is stopped in gdb, which can unwind libhdf5: if mpifit was inside
an HDF5 call that then does not return for about one more timeout, it is libhdf5's
hang; if the call returns, the hang is mpifit's loop around it.
"""
import os
import re
import subprocess
import sys

SRC = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
# frames that only carry the failure to where it is reported: the sanitizer
# runtime and its interceptors, libFuzzer, libc's string and abort functions,
# mpifit's allocator and panic
RUNTIME = re.compile(
    r"^(__asan|__lsan|__ubsan|__sanitizer|__interceptor|__libc_|__GI_|__mem|__str|__pthread_kill|__restore_rt|"
    r"fuzzer::|std::|operator|(malloc|calloc|realloc|free|aligned_alloc|posix_memalign|memalign|raise|abort|"
    r"pthread_kill|memcpy|memmove|memset|memcmp|strlen|strcmp|strnlen|strdup|mf_panic|mf_alloc_at|"
    r"mf_alloc_uninit_at|alloc|mf_grow|mf_strdup)$)")


def parse_frame(line):
    """(function, location, module) of a sanitizer stack line, or None:
    #3 0x7f.. in func /abs/file.c:12:5   #4 0x7f.. in func (/lib/x.so+0x12)   #5 0x7f..  (/lib/x.so+0x12)"""
    m = re.match(r"^\s*#\d+ 0x[0-9a-f]+\s+(.*)$", line)
    if not m:
        return None
    rest = m.group(1)
    mod = re.search(r"\(([^()]+?)\+0x[0-9a-f]+\)", rest)
    mod = mod.group(1) if mod else ""
    func, loc = "?", ""
    f = re.match(r"in (.+?)(?: (\S*[/.]\S*:\d+(?::\d+)?)| \(|$)", rest)
    if f:
        func, loc = f.group(1), f.group(2) or ""
    return func, loc, mod


def gdb_frames(exe, path, timeout):
    """The stack of a hanging input, from gdb: stopped by libFuzzer's own
    SIGALRM (every timeout/2 s), unwound with the libraries' unwind tables
    (the sanitizer's snapshot stops at libhdf5's frames: no frame pointers)."""
    try:
        r = subprocess.run(["gdb", "-q", "-batch", "-ex", "handle SIGALRM stop nopass", "-ex", "run", "-ex", "bt",
                            "--args", exe, "-timeout=%d" % timeout, path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout * 4 + 60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    out = []
    text = r.stdout.decode("utf-8", "replace")
    if "exited normally" in text or "exited with code" in text:
        return []  # it ended before the first alarm: no hang
    for line in text.splitlines():
        m = re.match(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*?\)(?: at (\S+)| from (\S+))?$", line)
        if m:
            loc = m.group(2) or ""
            if loc and not loc.startswith("/"):
                loc = ""
            out.append((m.group(1), loc, m.group(3) or ""))
    return out


def frames(lines):
    """the frames of the first stack in lines"""
    out = []
    for line in lines:
        fr = parse_frame(line)
        if fr is None:
            if out:
                break
            continue
        out.append(fr)
    return out


def owner(frame):
    func, loc, mod = frame
    path = loc or mod
    if "libhdf5" in mod:
        return "hdf5"
    if "libjpeg" in mod or "libturbojpeg" in mod:
        return "jpeglib"
    if "libinih" in mod:
        return "inih"
    if path.startswith(SRC + "/src/") or path.startswith(SRC + "/tests/"):
        return "mpifit"
    if re.match(r"^(mf_|H5)", func):
        return "mpifit" if func.startswith("mf_") else "hdf5"
    return "other"


def is_runtime(f):
    func, loc, mod = f
    glibc = "libc.so" in mod or re.match(r"^(\.\./sysdeps|libio|stdlib|nptl|csu|string|signal)/", loc)
    # an unnamed frame of the target itself: the runtime (mpifit's code has names)
    unnamed = func == "?" and "/fuzz_" in mod
    return bool(RUNTIME.match(func) or glibc or unnamed)


def first_real(fr):
    for f in fr:
        if not is_runtime(f):
            return f
    return fr[0] if fr else ("?", "", "")


def short(loc):
    """src/io/describe.c:102 from /.../src/io/describe.c:102:13"""
    parts = loc.rsplit(":", 2) if loc.count(":") >= 2 else loc.rsplit(":", 1)
    return os.path.relpath(parts[0], SRC) + (":" + parts[1] if len(parts) > 1 else "")


def innermost_mpifit(fr):
    for f in fr:
        if owner(f) == "mpifit" and f[1].startswith(SRC + "/src/"):
            return "%s %s" % (f[0], short(f[1]))
    for f in fr:
        if owner(f) == "mpifit":
            return f[0]
    return "-"


def one_call_hangs(exe, path, timeout, fr):
    """True if the library call mpifit was in when the alarm came does not
    return within about one more timeout (one HDF5 call that hangs: libhdf5's), False if
    it returns (the hang is mpifit's loop making many calls)."""
    api = next((i - 1 for i, f in enumerate(fr) if owner(f) == "mpifit" and i > 0 and owner(fr[i - 1]) != "mpifit"),
               None)
    if api is None:
        return False
    cmd = ["gdb", "-q", "-batch", "-ex", "handle SIGALRM stop nopass", "-ex", "run",
           "-ex", "handle SIGALRM nostop noprint nopass", "-ex", "frame %d" % api, "-ex", "finish",
           "-ex", "echo CALL-RETURNED\\n", "-ex", "kill", "--args", exe, "-timeout=%d" % timeout, path]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return True
    return "CALL-RETURNED" not in r.stdout.decode("utf-8", "replace")


def classify_timeout(kind, fr, exe=None, path=None, timeout=3):
    """kind | the library call mpifit was in | innermost mpifit frame"""
    call = "-"
    for i, f in enumerate(fr):
        if owner(f) == "mpifit":
            call = fr[i - 1][0] if i > 0 and owner(fr[i - 1]) != "mpifit" else "(mpifit code)"
            break
    sig = "%s | %s | %s" % (kind, call, innermost_mpifit(fr))
    if exe and call.startswith("H5") and one_call_hangs(exe, path, timeout, fr):
        return "hdf5", sig + " | one call hangs"
    return "mpifit", sig


def classify(report):
    lines = report.splitlines()
    err = next((i for i, l in enumerate(lines) if "ERROR:" in l or "runtime error:" in l or
                l.startswith("fuzz") or "[mpifit rank" in l), None)
    if err is None:
        return "no-repro", "ran clean"
    head = lines[err]
    if head.startswith("fuzz") or "[mpifit rank" in head:  # an oracle or MF_ASSERT
        fr = frames(lines[err:])
        return "mpifit", "oracle: %s | %s" % (head.strip(), innermost_mpifit(fr))
    if "LeakSanitizer" in head:
        # every leak record: mpifit's if any is (memory HDF5 hands the caller:
        # variable-length data a read converted, which the caller reclaims)
        verdict, sig = "hdf5", None
        for i, l in enumerate(lines):
            if re.search(r"(Direct|Indirect) leak of", l):
                fr = frames(lines[i + 1:])
                real = first_real(fr)
                mine = owner(real) == "mpifit" or any("conv_vlen" in f[0] for f in fr)
                s = "leak | %s | %s" % (real[0], innermost_mpifit(fr))
                if mine:
                    return "mpifit", s
                sig = sig or s
        return verdict, sig or "leak"
    kind = re.sub(r"^.*ERROR: ", "", head).strip()
    kind = re.sub(r"\s*\(pc .*|\s+on (unknown )?address.*|\s+0x[0-9a-f]+.*", "", kind)
    fr = frames(lines[err:])
    real = first_real(fr)
    who = owner(real)
    sig = "%s | %s | %s" % (kind, real[0], innermost_mpifit(fr))
    # a library writing or reading past a buffer: whose buffer?
    for i, l in enumerate(lines):
        if re.search(r"allocated by thread|is located in stack of thread", l):
            alloc = first_real(frames(lines[i + 1:]))
            if owner(alloc) == "mpifit":
                return "mpifit", sig + " | buffer of " + alloc[0]
            break
    if "timeout" in kind or ("out-of-memory" in kind and "malloc" not in kind):
        return "mpifit", sig  # a snapshot, or no stack: look at it by hand
    return (who if who in ("hdf5", "jpeglib", "inih") else "mpifit"), sig


def main(argv):
    known, timeout, args = [], 10, list(argv)
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--known":
            with open(args.pop(0)) as f:
                for line in f:
                    line = line.split("#", 1)[0].strip()
                    if line:
                        cls, regex = line.split(None, 1)
                        known.append((cls, re.compile(regex)))
        elif opt == "--timeout":
            timeout = int(args.pop(0))
        else:
            sys.exit(__doc__)
    if len(args) < 2:
        sys.exit(__doc__)
    exe, inputs = args[0], args[1:]
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":fast_unwind_on_malloc=0:symbolize=1"
    env["LSAN_OPTIONS"] = env.get("LSAN_OPTIONS", "") + ":fast_unwind_on_malloc=0"
    bad = 0
    for path in inputs:
        if os.path.basename(path).startswith("timeout-"):
            # libFuzzer named it: straight to gdb (a plain run would only wait)
            fr = gdb_frames(exe, path, timeout)
            if not fr:
                cls, sig = "no-repro", "ran clean"
            else:
                cls, sig = classify_timeout("timeout", fr, exe, path, timeout)
                if cls == "mpifit":
                    cls = next((c for c, k in known if k.search(sig)), cls)
            bad |= cls == "mpifit"
            print("%-8s %s  %s" % (cls, sig, path), flush=True)
            continue
        try:
            r = subprocess.run([exe, "-timeout=%d" % timeout, "-rss_limit_mb=2048", path], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout * 4 + 60)
            report = r.stderr.decode("utf-8", "replace") if r.returncode != 0 else ""
        except subprocess.TimeoutExpired:
            report = "ERROR: libFuzzer: timeout (killed by triage.py)"
        cls, sig = classify(report)
        if "out-of-memory (used" in sig:
            # over the RSS limit, which has no stack: again with a low limit
            # of one allocation, whose stack says who asked for it
            try:
                r = subprocess.run([exe, "-timeout=%d" % timeout, "-rss_limit_mb=2048", "-malloc_limit_mb=256",
                                    path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   timeout=timeout * 4 + 60)
                if r.returncode != 0:
                    cls, sig = classify(r.stderr.decode("utf-8", "replace"))
            except subprocess.TimeoutExpired:
                pass
        if "timeout" in sig.split(" | ")[0]:
            cls, sig = classify_timeout("timeout", gdb_frames(exe, path, timeout), exe, path, timeout)
        if cls == "mpifit":
            cls = next((c for c, k in known if k.search(sig)), cls)
        bad |= cls == "mpifit"
        print("%-8s %s  %s" % (cls, sig, path), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
