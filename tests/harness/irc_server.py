"""A real IRC network for the tests: InspIRCd (TLS, SASL) linked to Atheme services (NickServ
accounts, SaslServ), both from Debian's packages, plus a small client that reads what arrives.

Run it alone to debug the configuration: python -m tests.harness.irc_server
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.ports import free_port
from tests.harness.smtp_server import self_signed_cert

SERVER_NAME = "irc.fmn.test"
SERVICES_NAME = "services.fmn.test"
LINK_PASSWORD = "linkpass"


def _binary(name: str) -> str:
    # /usr/sbin may be missing from a non-login PATH.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        # Never a skip: `make test` installs it (scripts/ensure-prerequisites).
        raise RuntimeError(f"{name} is not installed: run scripts/ensure-prerequisites")
    return found


def inspircd_conf(d: Path, tls_port: int, plain_port: int, link_port: int) -> str:
    # defaultmodes "not": whoever creates a channel is its operator, as on real networks
    # (InspIRCd gives the creator +o only when o is in that list), so a test can make a
    # channel refuse the bot (+i, +b).
    cert, key = d / "localhost.crt", d / "localhost.key"
    return f"""
<config format="xml">
<server name="{SERVER_NAME}" description="fmn test" network="FmnTest" id="42X">
<admin name="fmn" nick="fmn" email="fmn@example.org">
<module name="ssl_gnutls">
<sslprofile name="main" provider="gnutls" certfile="{cert}" keyfile="{key}"
            dhfile="" requestclientcert="no" hash="sha256">
<bind address="127.0.0.1" port="{tls_port}" type="clients" sslprofile="main">
<bind address="127.0.0.1" port="{plain_port}" type="clients">
<bind address="127.0.0.1" port="{link_port}" type="servers">
<module name="cap">
<module name="sasl">
<module name="services_account">
<module name="spanningtree">
<module name="hidechans">
<module name="chghost">
<module name="chgident">
<module name="chgname">
<module name="sanick">
<module name="svshold">
<module name="servprotect">
<module name="ircv3_servertime">
<sasl target="{SERVICES_NAME}" requiressl="no">
<link name="{SERVICES_NAME}" ipaddr="127.0.0.1" port="{link_port}" allowmask="127.0.0.0/8"
      sendpass="{LINK_PASSWORD}" recvpass="{LINK_PASSWORD}">
<uline server="{SERVICES_NAME}" silent="yes">
<class name="all" commands="*" privs="*" usermodes="*" chanmodes="*">
<connect name="main" allow="*" timeout="30" pingfreq="120" hardsendq="1048576"
         softsendq="262144" recvq="65536" threshold="10000" commandrate="100000"
         fakelag="no" localmax="1000" globalmax="1000" useident="no" limit="5000"
         modes="+x">
<dns timeout="1" server="127.0.0.1">
<options allowhalfop="no" hostintopic="no" defaultmodes="not" syntaxhints="no"
         cyclehosts="no" cyclehostsfromuser="no" announcets="no" allowmismatch="no"
         defaultbind="auto" pingwarning="15" serverpingfreq="60" splitwhois="no"
         exemptchanops="" invitebypassmodes="yes" nosnoticestack="no">
<performance netbuffersize="10240" somaxconn="128" softlimit="12800"
             clonesonconnect="no" timeskipwarn="2s" quietbursts="yes">
<security announceinvites="dynamic" hidemodes="" hideulines="no" flatlinks="no"
          hidewhois="" hidebans="no" hidekills="" hidesplits="no" maxtargets="20"
          customversion="" operspywhois="no" runasuser="" runasgroup=""
          restrictbannedusers="yes" genericoper="no" userstats="Pu">
<limits maxline="512" maxnick="30" maxchan="64" maxmodes="20" maxident="10" maxhost="64"
        maxquit="255" maxtopic="307" maxkick="255" maxreal="128" maxaway="200">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="debug" target="{d / "ircd.log"}">
<pid file="{d / "ircd.pid"}">
<files motd="{d / "motd.txt"}">
<path configdir="{d}" datadir="{d}" logdir="{d}" moduledir="/usr/lib/inspircd/modules">
"""


ATHEME_MODULES = [
    "protocol/inspircd",
    "backend/opensex",
    "crypto/pbkdf2v2",
    "nickserv/main",
    "nickserv/register",
    "nickserv/identify",
    "saslserv/main",
    "saslserv/plain",
]


def atheme_conf(d: Path, link_port: int) -> str:
    modules = "\n".join(f'loadmodule "modules/{m}";' for m in ATHEME_MODULES)
    return f"""
{modules}
pbkdf2v2 {{ }};
serverinfo {{
    name = "{SERVICES_NAME}"; desc = "fmn test services"; numeric = "42S";
    recontime = 1; netname = "FmnTest"; hidehostsuffix = "users.fmn.test";
    adminname = "fmn"; adminemail = "fmn@example.org"; registeremail = "fmn@example.org";
    mta = "/bin/true"; loglevel = {{ error; info; admin; network; }};
    maxlogins = 5; maxusers = 50; mdlimit = 30; emaillimit = 100; emailtime = 300;
    auth = none; casemapping = rfc1459;
}};
uplink "{SERVER_NAME}" {{
    host = "127.0.0.1"; password = "{LINK_PASSWORD}"; port = {link_port};
}};
nickserv {{
    nick = "NickServ"; user = "NickServ"; host = "{SERVICES_NAME}"; real = "Nickname Services";
    maxnicks = 5; expire = 30;
}};
saslserv {{
    nick = "SaslServ"; user = "SaslServ"; host = "{SERVICES_NAME}"; real = "SASL Agent";
}};
general {{
    flood_msgs = 1000; flood_time = 10; ratelimit_uses = 1000; ratelimit_period = 60;
    kline_time = 7; commit_interval = 5; uplink_sendq_limit = 1048576; language = "en";
    immune_level = immune;
}};
"""


@dataclass
class IRCClient:
    """A bare IRC client that records the PRIVMSGs it receives."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    nick: str
    lines: list[bytes] = field(default_factory=list)
    privmsgs: list[tuple[str, bytes]] = field(default_factory=list)  # (sender nick, text)
    # When the server relayed each PRIVMSG (IRCv3 server-time), immune to this client's delays.
    privmsg_times: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, port: int, nick: str) -> IRCClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer, nick)
        client.send("CAP REQ :server-time", f"NICK {nick}", f"USER {nick} 0 * :{nick}", "CAP END")
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                raise ConnectionError("IRC server closed the connection")
            if line.startswith(b"PING"):
                client.send("PONG " + line.decode().split(" ", 1)[1].strip())
            if b" 001 " in line:
                break
        client._task = asyncio.create_task(client._read())
        return client

    def send(self, *lines: str) -> None:
        for line in lines:
            self.writer.write(line.encode() + b"\r\n")

    async def _read(self) -> None:
        while line := await self.reader.readline():
            line = line.rstrip(b"\r\n")
            at = None
            if line.startswith(b"@"):
                tags, _, line = line.partition(b" ")
                at = _server_time(tags)
            self.lines.append(line)
            if line.startswith(b"PING"):
                self.send("PONG " + line.decode().split(" ", 1)[1])
                continue
            parts = line.split(b" ", 3)
            if len(parts) == 4 and parts[1] == b"PRIVMSG":
                sender = parts[0].lstrip(b":").split(b"!")[0].decode()
                self.privmsgs.append((sender, parts[3].removeprefix(b":")))
                self.privmsg_times.append(at if at is not None else time.time())

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError):
            self.send("QUIT :bye")
            await self.writer.drain()
        if self._task is not None:
            self._task.cancel()
        self.writer.close()


def _server_time(tags: bytes) -> float | None:
    for tag in tags.lstrip(b"@").split(b";"):
        name, _, value = tag.partition(b"=")
        if name == b"time":
            stamp = dt.datetime.fromisoformat(value.decode().replace("Z", "+00:00"))
            return stamp.timestamp()
    return None


class IRCNetwork:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.tls_port, self.plain_port, self.link_port = free_port(), free_port(), free_port()
        self.cert, _ = self_signed_cert(directory)
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        (self.dir / "motd.txt").write_text("fmn test network\n")
        # A port free_port() found may be taken by another test's server before InspIRCd binds
        # it; InspIRCd then runs without that listener. Start again on other ports.
        for _ in range(5):
            if self._start_ircd():
                break
            self.stop()
            self.tls_port, self.plain_port, self.link_port = free_port(), free_port(), free_port()
        else:
            raise RuntimeError(f"InspIRCd could not bind its ports:\n{self.logs()}")
        _wait_for_port(self.plain_port)
        services = self.dir / "services"
        services.mkdir(exist_ok=True)
        aconf = self.dir / "atheme.conf"
        aconf.write_text(atheme_conf(self.dir, self.link_port))
        self._spawn(
            [
                _binary("atheme-services"),
                "-n",
                "-c",
                str(aconf),
                "-D",
                str(services),
                "-l",
                str(self.dir / "atheme.log"),
                "-p",
                str(self.dir / "atheme.pid"),
            ],
            "atheme.out",
        )

    def _start_ircd(self, timeout: float = 20) -> bool:
        """Start InspIRCd; False when one of its listeners failed to bind."""
        conf = self.dir / "inspircd.conf"
        conf.write_text(inspircd_conf(self.dir, self.tls_port, self.plain_port, self.link_port))
        out = self.dir / "ircd.out"
        out.unlink(missing_ok=True)
        self._spawn(
            [_binary("inspircd"), "--config", str(conf), "--nofork", "--runasroot"], out.name
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = out.read_text(errors="replace") if out.exists() else ""
            if "failed to bind" in text:
                return False
            if "is now running" in text or self._processes[-1].poll() is not None:
                return True
            time.sleep(0.05)
        return True

    def _spawn(self, command: list[str], out: str) -> None:
        with (self.dir / out).open("ab") as log:
            self._processes.append(
                subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            )

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.terminate()
        for process in self._processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._processes.clear()

    def logs(self) -> str:
        return "\n".join(
            f"== {name}\n" + (self.dir / name).read_text(errors="replace")[-3000:]
            for name in ("ircd.out", "atheme.out", "atheme.log")
            if (self.dir / name).exists()
        )

    async def register(self, account: str, password: str) -> None:
        """Create a NickServ account (waits until the services are linked)."""
        client = await IRCClient.connect(self.plain_port, account)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                client.send(f"PRIVMSG NickServ :REGISTER {password} {account}@example.org")
                await asyncio.sleep(0.5)
                if any(b"registered" in line for line in client.lines):
                    return
            raise RuntimeError("NickServ did not register the account\n" + self.logs())
        finally:
            await client.close()

    async def reader(self, nick: str) -> IRCClient:
        return await IRCClient.connect(self.plain_port, nick)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def _wait_for_port(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


if __name__ == "__main__":
    import tempfile

    async def main() -> None:
        with tempfile.TemporaryDirectory() as d:
            network = IRCNetwork(Path(d))
            network.start()
            try:
                await network.register("fmnbot", "secret")
                print("registered; logs:\n", network.logs()[-1500:])
            finally:
                network.stop()

    asyncio.run(main())
