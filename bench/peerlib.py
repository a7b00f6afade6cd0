"""What bench/peers.py and bench/capacity.py share: child processes that die
with the script, waiting for a listener, a process's CPU time, the
namespace's ephemeral port range, nginx and HAProxy with private
configurations, loadgen's JSON summary, medians and ratios.

Both scripts run inside a private network namespace (scripts/bench starts
them with `unshare -n`), so the sysctls they write stay there."""
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import time

RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def die_with_parent():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: nothing outlives the script


def spawn(cmd, **kw):
    return subprocess.Popen(cmd, preexec_fn=die_with_parent, **kw)


def run_client(cmd, timeout):
    """Runs a client to completion (killed past `timeout`); returns its output."""
    p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out


class children_cpu:
    """CPU seconds of the children reaped inside the block (RUSAGE_CHILDREN)."""

    def __enter__(self):
        r = os.times()
        self.start = r.children_user + r.children_system
        return self

    def __exit__(self, *a):
        r = os.times()
        self.seconds = r.children_user + r.children_system - self.start


def cpu_seconds(pid):
    """utime + stime of a running process (clock ticks of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port, proc, limit=10):
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


def read_range():
    with open(RANGE_FILE) as f:
        return f.read().split()


def set_range(first, last):
    with open(RANGE_FILE, "w") as f:
        f.write(f"{first} {last}\n")


def bring_up_loopback():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def loadgen_json(out):
    """The JSON summary loadgen printed last, or None."""
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b, key="rps"):
    """a[key] / b[key] for two runs' figures, None when either is missing."""
    if not a or not b or a.get(key) is None or not b.get(key):
        return None
    return a[key] / b[key]


def nginx_conf(tmp, name, servers, upstreams=None):
    """servers: (listen ports, location body); upstreams: name -> backend ports."""
    for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"]:
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    blocks = "".join(f"  upstream {u} {{ " + " ".join(f"server 127.0.0.1:{p};" for p in ports) + " }\n"
                     for u, ports in (upstreams or {}).items())
    for ports, body in servers:
        listen = " ".join(f"listen 127.0.0.1:{p} backlog=4096;" for p in ports)
        blocks += f"  server {{ {listen} {body} }}\n"
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx-{name}.pid;
error_log {tmp}/error-{name}.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
{blocks}}}
"""


def start_nginx(tmp, name, servers, upstreams=None):
    path = os.path.join(tmp, f"nginx-{name}.conf")
    with open(path, "w") as f:
        f.write(nginx_conf(tmp, name, servers, upstreams))
    p = spawn(["nginx", "-p", tmp, "-e", os.path.join(tmp, f"error-{name}.log"), "-c", path],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for ports, _ in servers:
        for port in ports:
            wait_port(port, p)
    return p


def haproxy_conf(mode, maxconn, frontends):
    """frontends: [(listen port, [(destination port, 'ADDR:LOW-HIGH' source)])]. One
    thread, as the gateway and nginx run one; a new upstream connection per
    request in http mode (httpclose, no reuse), as they open one."""
    http = "  option httpclose\n  http-reuse never\n" if mode == "http" else ""
    text = (f"global\n  maxconn {maxconn}\n  nbthread 1\n"
            f"defaults\n  mode {mode}\n  maxconn {maxconn}\n  retries 0\n  timeout connect 5s\n"
            f"  timeout client 120s\n  timeout server 120s\n{http}")
    for i, (port, servers) in enumerate(frontends):
        text += f"listen px{i}\n  bind 127.0.0.1:{port} backlog 4096\n  balance roundrobin\n"
        for j, (dest, source) in enumerate(servers):
            text += f"  server s{j} 127.0.0.1:{dest} source {source}\n"
    return text


def haproxy_version():
    """'HAProxy 2.6.12-1+deb12u4' (the first line of haproxy -v, without its date and address)."""
    words = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split()
    return " ".join(words[:1] + words[2:3]) if len(words) >= 3 else "HAProxy"


def start_haproxy(tmp, name, mode, maxconn, frontends):
    path, log = os.path.join(tmp, f"haproxy-{name}.cfg"), os.path.join(tmp, f"haproxy-{name}.log")
    with open(path, "w") as f:
        f.write(haproxy_conf(mode, maxconn, frontends))
    with open(log, "w") as out:
        p = spawn(["haproxy", "-db", "-f", path], stdout=out, stderr=subprocess.STDOUT)
    try:
        for port, _ in frontends:
            wait_port(port, p)
    except RuntimeError as e:
        stop([p])
        raise RuntimeError(f"haproxy: {e}: " + open(log).read()[-300:].strip())
    return p


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
