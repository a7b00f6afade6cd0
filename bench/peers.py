#!/usr/bin/env python3
"""Peers: portres' samples against the tools a user would pick instead.

Must run inside a private network namespace (scripts/bench starts it with
`unshare -n`): it brings loopback up, may narrow ip_local_port_range, and
runs nginx there with a private config (daemon off, master_process off,
pid and logs in a temporary directory), killed at the end.

  clients, one request per connection: ab vs loadgen (pool); wrk (keep-alive)
    as a reference; all against nginx serving a small page.
  proxies: nginx proxy_pass vs gateway (pool) vs gateway (ephemeral), to the
    same upstream (the nginx above), driven by ab, at the default range and
    with ip_local_port_range narrowed to 1,000 ports.
Methods alternate within each round (A B A B); a ratio is the median of the
per-round ratios. Every run is bounded in time (-t/--duration) and count.
Usage: peers.py --loadgen BIN --gateway BIN --out FILE [--rounds R] [--seconds S]
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

UPSTREAM, NGINX_PROXY, GW_POOL, GW_EPHEMERAL = 18080, 18081, 18082, 18083
CONCURRENCY = 32
RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def die_with_parent():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: nothing outlives this script


def spawn(cmd, **kw):
    return subprocess.Popen(cmd, preexec_fn=die_with_parent, **kw)


def cpu_seconds(pid):
    """utime + stime of a running process (clock ticks of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_client(cmd, timeout):
    """Runs a client to completion; returns (stdout, its CPU seconds)."""
    p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    # The child has been reaped by communicate(); its rusage is in RUSAGE_CHILDREN deltas.
    return out


class children_cpu:
    def __enter__(self):
        r = os.times()
        self.start = r.children_user + r.children_system
        return self

    def __exit__(self, *a):
        r = os.times()
        self.seconds = r.children_user + r.children_system - self.start


def ab(url, seconds):
    with children_cpu() as c:
        out = run_client(["ab", "-q", "-r", "-s", "5", "-t", str(seconds), "-n", "2000000", "-c", str(CONCURRENCY), url],
                         seconds + 30)
    m = re.search(r"Complete requests:\s+(\d+)", out)
    t = re.search(r"Time taken for tests:\s+([\d.]+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if not m or not t:
        return {"error": "ab: " + out[-300:]}
    done = int(m.group(1))
    fails = (int(failed.group(1)) if failed else 0) + (int(non2xx.group(1)) if non2xx else 0)
    return {"requests": done, "seconds": float(t.group(1)), "rps": (done - fails) / float(t.group(1)),
            "failures": fails, "client_cpu_s": c.seconds}


def loadgen(binary, port, seconds):
    with children_cpu() as c:
        out = run_client([binary, "--target", f"127.0.0.1:{port}", "--http", "--close", "server", "--concurrency",
                          str(CONCURRENCY), "--duration", str(seconds), "--ports", "pool", "--json"], seconds + 30)
    try:
        j = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "loadgen: " + out[-300:]}
    return {"requests": j["connections"], "seconds": j["seconds"], "rps": j["connections_per_s"],
            "failures": j["errors"], "failures_by_kind": j.get("errors_by_kind", {}), "client_cpu_s": c.seconds}


def wrk(url, seconds):
    with children_cpu() as c:
        out = run_client(["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", "5s", url], seconds + 30)
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if not m:
        return {"error": "wrk: " + out[-300:]}
    secs = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    fails = errs + (int(non2xx.group(1)) if non2xx else 0)
    return {"requests": int(m.group(1)), "seconds": secs, "rps": int(m.group(1)) / secs, "failures": fails,
            "client_cpu_s": c.seconds}


def wait_port(port, proc, limit=10):
    import socket
    end = time.time() + limit
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server for port {port} exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def nginx_conf(tmp, port, body):
    for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"]:
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx-{port}.pid;
error_log {tmp}/error-{port}.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    {body}
  }}
}}
"""


def start_nginx(tmp, port, body):
    path = os.path.join(tmp, f"nginx-{port}.conf")
    with open(path, "w") as f:
        f.write(nginx_conf(tmp, port, body))
    p = spawn(["nginx", "-p", tmp, "-e", os.path.join(tmp, f"error-{port}.log"), "-c", path],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, p)
    return p


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    if not a or not b or "rps" not in a or "rps" not in b or b["rps"] == 0:
        return None
    return a["rps"] / b["rps"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    a = ap.parse_args()
    result = {"rounds": a.rounds, "seconds_per_run": a.seconds, "concurrency": CONCURRENCY,
              "clients": {"runs": []}, "proxies": {}}
    procs = []
    default_range = None
    with tempfile.TemporaryDirectory(prefix="portres-peers-") as tmp:
        # The samples' registry lives in this run's own folder, never the host's.
        os.environ["PORTRES_RUNTIME_DIR"] = os.path.join(tmp, "run")
        os.environ["PORTRES_STATE_DIR"] = os.path.join(tmp, "state")
        os.makedirs(os.path.join(tmp, "www"))
        with open(os.path.join(tmp, "www", "index.html"), "w") as f:
            f.write("<html><body>portres peers: a small page</body></html>\n")
        try:
            missing = [t for t in ["nginx", "ab", "wrk", "ip"] if not shutil.which(t)] + \
                      [b for b in [a.loadgen, a.gateway] if not os.access(b, os.X_OK)]
            if missing:
                raise RuntimeError("not installed or not built: " + ", ".join(missing))
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            default_range = open(RANGE_FILE).read().split()
            result["nginx"] = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
            upstream = start_nginx(tmp, UPSTREAM, f"location / {{ root {tmp}/www; }}")
            procs.append(upstream)
            url = f"http://127.0.0.1:{UPSTREAM}/"
            # Clients: A B A B (ab, loadgen, wrk in each round).
            for r in range(a.rounds):
                run = {"ab": ab(url, a.seconds), "loadgen": loadgen(a.loadgen, UPSTREAM, a.seconds),
                       "wrk": wrk(url, a.seconds)}
                result["clients"]["runs"].append(run)
                print(f"peers round {r + 1}: ab {run['ab'].get('rps', 0):,.0f}/s, loadgen "
                      f"{run['loadgen'].get('rps', 0):,.0f}/s, wrk (keep-alive) {run['wrk'].get('rps', 0):,.0f}/s",
                      flush=True)
            runs = result["clients"]["runs"]
            result["clients"]["loadgen_vs_ab"] = median([ratio(x["loadgen"], x["ab"]) for x in runs])
            result["clients"]["wrk_vs_ab"] = median([ratio(x["wrk"], x["ab"]) for x in runs])
            # Proxies: one long-running process each; CPU from /proc per run.
            nginx_proxy = start_nginx(tmp, NGINX_PROXY, f"location / {{ proxy_pass http://127.0.0.1:{UPSTREAM}; }}")
            procs.append(nginx_proxy)
            servers = {"nginx_proxy": (nginx_proxy, NGINX_PROXY)}
            for name, port, mode in [("gateway_pool", GW_POOL, "pool"), ("gateway_ephemeral", GW_EPHEMERAL, "ephemeral")]:
                p = spawn([a.gateway, "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{UPSTREAM}",
                           "--ports", mode, "--duration", str(3600)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
                procs.append(p)
                wait_port(port, p)
                servers[name] = (p, port)
            for label, span in [("default", default_range), ("narrow_1000", ["40000", "40999"])]:
                with open(RANGE_FILE, "w") as f:
                    f.write(f"{span[0]} {span[1]}\n")
                runs = []
                for r in range(a.rounds):
                    run = {}
                    for name, (p, port) in servers.items():
                        before = cpu_seconds(p.pid)
                        x = ab(f"http://127.0.0.1:{port}/", a.seconds)
                        x["proxy_cpu_s"] = cpu_seconds(p.pid) - before
                        if x.get("requests"):
                            x["proxy_cpu_us_per_req"] = x["proxy_cpu_s"] * 1e6 / x["requests"]
                        run[name] = x
                    runs.append(run)
                    print(f"peers {label} round {r + 1}: " + ", ".join(
                        f"{n} {v.get('rps', 0):,.0f}/s" for n, v in run.items()), flush=True)
                cpu_ratio = median([
                    x["gateway_pool"]["proxy_cpu_us_per_req"] / x["gateway_ephemeral"]["proxy_cpu_us_per_req"]
                    for x in runs if x["gateway_pool"].get("proxy_cpu_us_per_req")
                    and x["gateway_ephemeral"].get("proxy_cpu_us_per_req")])
                result["proxies"][label] = {
                    "range": f"{span[0]}-{span[1]}", "runs": runs,
                    "pool_vs_nginx": median([ratio(x["gateway_pool"], x["nginx_proxy"]) for x in runs]),
                    "ephemeral_vs_nginx": median([ratio(x["gateway_ephemeral"], x["nginx_proxy"]) for x in runs]),
                    "pool_cpu_vs_ephemeral_cpu": cpu_ratio}
        except Exception as e:  # reported in the JSON and the report, not hidden
            result["error"] = str(e)
            print("peers:", e, file=sys.stderr)
        finally:
            if default_range:
                with open(RANGE_FILE, "w") as f:
                    f.write(f"{default_range[0]} {default_range[1]}\n")
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
