"""A curl-like HTTP probe for the lab's `curl` containers and checks.

`run(args, env)` understands the subset of curl the lab uses and answers like curl does: the output
text and curl's exit code (0 done, 22 HTTP error with --fail, 7 cannot connect, 28 timeout, 6 cannot
resolve, 2 bad usage). `HTTP_PROXY` in `env` sends http:// requests through that forward proxy.
Nothing is read from or written to files: in the sandbox the arguments come from students' manifests
and run in-process, so `-o` accepts only /dev/null (or -) and `-d @file` is refused.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from multidict import CIMultiDict
from yarl import URL

DEFAULT_CONNECT_TIMEOUT = 300.0  # curl's default
DISCARD = ("/dev/null", "-")

# Options without a value, and options that take one, by every spelling accepted.
_FLAGS = {
    "-s": "silent",
    "--silent": "silent",
    "-S": "show_error",
    "--show-error": "show_error",
    "-f": "fail",
    "--fail": "fail",
    "-L": "location",
    "--location": "location",
    "-i": "include",
    "--include": "include",
}
_VALUED = {
    "-X": "request",
    "--request": "request",
    "-H": "header",
    "--header": "header",
    "-d": "data",
    "--data": "data",
    "--data-ascii": "data",
    "--data-binary": "data",
    "--data-raw": "data_raw",
    "-o": "output",
    "--output": "output",
    "-m": "max_time",
    "--max-time": "max_time",
    "--connect-timeout": "connect_timeout",
    "-w": "write_out",
    "--write-out": "write_out",
}


class UsageError(Exception):
    """Bad arguments: curl's exit code 2."""


class Failure(Exception):
    """A transfer failure with curl's exit code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Options:
    url: str = ""
    method: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    output: str | None = None
    max_time: float | None = None
    connect_timeout: float | None = None
    write_out: str = ""
    silent: bool = False
    show_error: bool = False
    fail: bool = False
    location: bool = False
    include: bool = False


def _seconds(option: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"option {option}: expected a proper numerical parameter") from None
    if seconds < 0:
        raise UsageError(f"option {option}: expected a proper numerical parameter")
    return seconds


def _set(options: Options, name: str, option: str, value: str) -> None:
    if name == "request":
        options.method = value
    elif name == "header":
        key, colon, header_value = value.partition(":")
        if colon and key.strip():  # curl ignores a header without a name and colon
            options.headers.append((key.strip(), header_value.strip()))
    elif name in ("data", "data_raw"):
        if name == "data" and value.startswith("@"):
            raise UsageError(f"option {option}: reading data from a file is not supported here")
        options.data.append(value)
    elif name == "output":
        if value not in DISCARD:
            raise UsageError(f"option {option}: only /dev/null is supported as an output file here")
        options.output = value
    elif name == "max_time":
        options.max_time = _seconds(option, value)
    elif name == "connect_timeout":
        options.connect_timeout = _seconds(option, value)
    else:
        options.write_out = value


def parse_args(args: list[str]) -> Options:
    """Parse curl arguments (a leading "curl", as in a container command, is skipped)."""
    if args and os.path.basename(args[0]) == "curl":
        args = args[1:]
    options = Options()
    urls: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg.startswith("--"):
            if arg in _FLAGS:
                setattr(options, _FLAGS[arg], True)
            elif arg in _VALUED:
                if i >= len(args):
                    raise UsageError(f"option {arg}: requires parameter")
                _set(options, _VALUED[arg], arg, args[i])
                i += 1
            else:
                raise UsageError(f"option {arg}: is unknown")
        elif arg.startswith("-") and len(arg) > 1:
            # A cluster of short options such as -sSf, or -XPOST; a valued letter takes the rest of
            # the cluster, or else the next argument.
            for pos, letter in enumerate(arg[1:], 1):
                option = "-" + letter
                if option in _FLAGS:
                    setattr(options, _FLAGS[option], True)
                elif option in _VALUED:
                    value = arg[pos + 1 :]
                    if not value:
                        if i >= len(args):
                            raise UsageError(f"option {option}: requires parameter")
                        value = args[i]
                        i += 1
                    _set(options, _VALUED[option], option, value)
                    break
                else:
                    raise UsageError(f"option {option}: is unknown")
        else:
            urls.append(arg)
    if not urls:
        raise UsageError("no URL specified")
    if len(urls) > 1:
        raise UsageError("only one URL is supported here")
    options.url = urls[0]
    return options


def _target(raw: str) -> URL:
    """The request URL; like curl, a URL without a scheme means http."""
    try:
        url = URL(raw if "://" in raw else f"http://{raw}")
    except ValueError:
        raise Failure(3, "URL rejected: Malformed input to a URL function") from None
    if url.scheme not in ("http", "https"):
        raise Failure(1, f'Protocol "{url.scheme}" not supported')
    if not url.host:
        raise Failure(3, "URL rejected: No host part in the URL")
    return url


def _proxy_url(env: Mapping[str, str]) -> str | None:
    proxy = env.get("HTTP_PROXY") or env.get("http_proxy")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _write_out(template: str, status: int, elapsed: float) -> str:
    """Expand curl's -w template: %{http_code}, %{response_code}, %{time_total} and \\n."""
    values = {
        "http_code": f"{status:03d}",
        "response_code": f"{status:03d}",
        "time_total": f"{elapsed:.6f}",
    }
    text = template.replace("\\n", "\n")
    for name, value in values.items():
        text = text.replace("%{" + name + "}", value)
    return text


@dataclass
class Reply:
    status: int
    head: str  # status line and headers, for -i
    content: bytes


async def _exchange(options: Options, url: URL, proxy: str | None) -> Reply:
    method = options.method or ("POST" if options.data else "GET")
    headers = CIMultiDict([("User-Agent", "curl/8.5.0"), ("Accept", "*/*")])
    body = "&".join(options.data).encode() if options.data else None
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    for key, _ in options.headers:
        headers.popall(key, None)
    headers.extend(options.headers)
    timeout = aiohttp.ClientTimeout(
        total=options.max_time or None,
        sock_connect=options.connect_timeout or DEFAULT_CONNECT_TIMEOUT,
    )
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(
            method,
            url,
            headers=headers,
            data=body,
            allow_redirects=options.location,
            proxy=proxy if url.scheme == "http" else None,
        ) as response,
    ):
        version = response.version
        lines = [f"HTTP/{version.major}.{version.minor} {response.status} {response.reason}"]
        lines += [f"{key.decode('latin-1')}: {value.decode('latin-1')}" for key, value in response.raw_headers]
        return Reply(response.status, "\r\n".join(lines) + "\r\n\r\n", await response.read())


def _failure(exc: Exception, proxy: str | None, elapsed: float) -> Failure:
    """Map an aiohttp error onto curl's exit code and message."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, TimeoutError):
        return Failure(28, f"Operation timed out after {int(elapsed * 1000)} milliseconds")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        if proxy is not None and exc.host == URL(proxy).host:
            return Failure(5, f"Could not resolve proxy: {exc.host}")
        return Failure(6, f"Could not resolve host: {exc.host}")
    if isinstance(exc, aiohttp.ClientSSLError):
        return Failure(35, f"SSL connect error: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = os.strerror(exc.errno) if exc.errno else "Could not connect to server"
        return Failure(7, f"Failed to connect to {exc.host} port {exc.port}: {reason}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Failure(52, "Empty reply from server")
    if isinstance(exc, aiohttp.InvalidURL):
        return Failure(3, f"URL rejected: {exc}")
    return Failure(56, f"Failure when receiving data from the peer: {exc}")


async def run(args: list[str], env: Mapping[str, str]) -> tuple[int, str]:
    """Run a curl command line; returns (curl's exit code, the text curl would print)."""
    try:
        options = parse_args(args)
    except UsageError as exc:
        return 2, f"curl: {exc}\ncurl: try 'curl --help' for more information\n"
    proxy = _proxy_url(env)
    started = time.monotonic()
    status, text = 0, ""
    try:
        reply = await _exchange(options, _target(options.url), proxy)
        status = reply.status
        if options.fail and status >= 400:
            raise Failure(22, f"The requested URL returned error: {status}")
        if options.include:
            text += reply.head
        if options.output in (None, "-"):
            text += reply.content.decode("utf-8", errors="replace")
        code = 0
    except (Failure, aiohttp.ClientError, TimeoutError) as exc:
        failure = _failure(exc, proxy, time.monotonic() - started)
        code = failure.code
        if not options.silent or options.show_error:
            text += f"curl: ({code}) {failure}\n"
    if options.write_out:
        text += _write_out(options.write_out, status, time.monotonic() - started)
    return code, text


def main() -> None:
    code, text = asyncio.run(run(sys.argv[1:], os.environ))
    sys.stdout.write(text)
    sys.exit(code)


if __name__ == "__main__":
    main()
