#!/usr/bin/env python3
"""`make docs-test`: every example of the documentation site, run in order against a fresh
local stack, page by page, and every response a page shows checked against the real one.

How a page is read (docs/CONTRIBUTING.md says the same for writers):

- ```sh (or bash, shell) blocks run in one bash per page (`set -eo pipefail`), in order, so
  what a block sets, later blocks see. A block that fails fails the page.
- ```python and ```js blocks run as scripts (python3 from the docs' virtualenv, node with the
  docs' node_modules). One whose first line names a file (`# receiver.py`, `// sync.mjs`) is
  saved under that name instead, for a later shell block to run.
- A line `export NAME=<placeholder>` (a value holding `…`, `...` or `<`) is the reader's to
  fill; here it is filled from the stack:
    * a key (`ic_live_…`, `ic_test_…`) is issued with the scopes its comment lists;
    * a comment naming a field in quotes (`# the "id" above`) takes that field (a dotted
      path) of the last response;
    * the stack's own values, IC_API_URL and IC_ADMIN_PASSWORD, replace whatever the page
      exports for them (a reader's stack is on port 3000; this one is not).
  Any `…` left in a block that runs is a placeholder nobody filled, and fails the page.
- Every curl is recorded (a shim in front of the real one). A ```http block after an example
  is the response it shows: its status, the headers it lists and the shape of its JSON body
  are checked against the last request of that example. Every other request must succeed
  (2xx). Shapes: each key shown must be there with a value of the same type; strings must
  match, `…` standing for any text (and "…" alone for any value); numbers match by type; an empty list must be empty.
- `<!-- docs-test: skip REASON -->` before a block leaves it out (reported, with its reason).
  `<!-- docs-test: wait-for "TEXT" -->` waits (up to 30 s) until the page's output (its
  background processes' too) holds TEXT.

Usage: examples.py [PAGE.md ...]   (default: README.md, then every page of SUMMARY.md in its
order)
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "docs" / "src"
BIN = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
DOCS_VENV = ROOT / ".venv-docs"
NODE_MODULES = ROOT / "docs" / "node_modules"
SHELL_LANGS = {"sh", "bash", "shell"}
PYTHON_LANGS = {"python", "py"}
NODE_LANGS = {"js", "javascript", "mjs"}
ELLIPSIS = ("…", "...")
BLOCK_TIMEOUT = 120


class PageFailed(Exception):
    pass


# ---------------------------------------------------------------- reading a page

class Block:
    def __init__(self, lang, text, line, directives):
        self.lang = lang
        self.text = text
        self.line = line
        self.directives = directives


def read_page(path):
    """The page's fenced blocks and standalone directives, in order."""
    items, directives = [], []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", line)
        comment = re.match(r"^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$", line)
        if comment:
            directive = comment.group(1)
            if directive.startswith("wait-for"):
                items.append(("wait-for", directive, i + 1))
            else:
                # A skip belongs to the block on the very next line, or it would silently
                # fall on whichever block comes next.
                following = lines[i + 1] if i + 1 < len(lines) else ""
                if not re.match(r"^\s*(```+|~~~+)", following):
                    raise PageFailed(f"line {i + 1}: <!-- docs-test: {directive} --> must be "
                                     "on the line just before the block it is about")
                directives.append(directive)
            i += 1
            continue
        if re.match(r"^\s*(>\s*)+(```+|~~~+)\s*(sh|bash|shell|python|py|js|javascript|mjs|http)\b", line):
            raise PageFailed(f"line {i + 1}: an example in a quote would not run: take it out "
                             "of the quote")
        if fence:
            indent, marker, lang = fence.group(1), fence.group(2), fence.group(3).lower()
            body, j = [], i + 1
            while j < len(lines) and not lines[j].strip().startswith(marker):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            items.append(("block", Block(lang, "\n".join(body) + "\n", i + 1, directives), i + 1))
            directives = []
            i = j + 1
            continue
        i += 1
    return items


# ---------------------------------------------------------------- the stack

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, work):
        self.port = free_port()
        env = dict(os.environ, RUST_LOG="warn", PORT=str(self.port),
                   DYNAMODB_PORT=str(free_port()), COGNITO_PORT=str(free_port()))
        self.out = open(work / "stack.out", "w+")
        self.err = open(work / "stack.err", "w+")
        self.process = subprocess.Popen([str(BIN / "local-stack")], cwd=ROOT, env=env,
                                        stdout=self.out, stderr=self.err)
        deadline = time.time() + 180
        while True:
            text = Path(self.out.name).read_text()
            if "\nListening on" in text:
                break
            if self.process.poll() is not None or time.time() > deadline:
                raise PageFailed("the local stack did not start:\n"
                                 + Path(self.err.name).read_text()[-3000:])
            time.sleep(0.3)
        self.url = f"http://127.0.0.1:{self.port}"
        lines = text.splitlines()
        at = next(n for n, l in enumerate(lines) if l.startswith("Member admin@demo.test"))
        self.admin_password = lines[at + 1].strip()
        self.env_file = ROOT / ".local" / f"env.{self.port}"

    def values(self):
        """What `make run` prints, by the names the pages give them (always this stack's,
        whatever a page writes: its URL is http://127.0.0.1:3000 for a reader)."""
        return {"IC_API_URL": self.url, "IC_ADMIN_PASSWORD": self.admin_password}

    def env(self):
        values = {}
        for line in self.env_file.read_text().splitlines():
            m = re.match(r"^(?:export\s+)?([A-Z0-9_]+)=(.*)$", line)
            if m:
                values[m.group(1)] = m.group(2).strip("'\"")
        return values

    def issue_key(self, name, mode, scopes):
        env = dict(os.environ, **self.env())
        args = [str(BIN / "icadmin"), "keys", "create", "--org", "demo",
                "--label", f"docs: {name}", "--mode", mode]
        for scope in scopes:
            args += ["--scope", scope]
        done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise PageFailed(f"could not issue {name} ({' '.join(scopes)}): {done.stderr}")
        return json.loads(done.stdout)["key"]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.out.close()
        self.err.close()


# ---------------------------------------------------------------- the shell a page runs in

CURL_SHIM = r"""#!/usr/bin/env bash
# docs-test: the real curl, every request's arguments, headers and body recorded. A caller's
# own -D/--dump-header and -o/--output are honoured, and copied into the record after.
n=$(ls "$DOCS_REQUESTS" | grep -c '\.args$' || true); n=$(printf '%04d' "$((n + 1))")
record="$DOCS_REQUESTS/$n"
printf '%s\n' "$@" > "$record.args"
args=("$@"); headers=""; output=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -D|--dump-header) headers="${args[i+1]}" ;;
    -o|--output) output="${args[i+1]}" ;;
  esac
done
extra=(-sS)
if [ -z "$headers" ]; then extra+=(-D "$record.headers"); fi
set -o pipefail
if [ -z "$output" ]; then
  "$DOCS_REAL_CURL" "${extra[@]}" "$@" | tee "$record.body"; status=$?
else
  "$DOCS_REAL_CURL" "${extra[@]}" "$@"; status=$?
  if [ -f "$output" ] && [ "$output" != /dev/null ]; then cp "$output" "$record.body"; else : > "$record.body"; fi
fi
if [ -n "$headers" ]; then
  if [ -f "$headers" ]; then cp "$headers" "$record.headers"; else : > "$record.headers"; fi
fi
[ -f "$record.headers" ] || : > "$record.headers"
exit $status
"""


class Shell:
    """One bash per page, fed block by block; its output (and its background jobs') is
    one log."""

    def __init__(self, work, env):
        self.work = work
        self.log_path = work / "output.log"
        self.log = open(self.log_path, "w+")
        self.requests = work / "requests"
        self.requests.mkdir()
        shim = work / "bin"
        shim.mkdir()
        (shim / "curl").write_text(CURL_SHIM)
        (shim / "curl").chmod(0o755)
        path = [str(shim), str(DOCS_VENV / "bin"), os.environ["PATH"]]
        env = dict(env, PATH=":".join(path), DOCS_REQUESTS=str(self.requests),
                   DOCS_REAL_CURL=shutil.which("curl"), NODE_PATH=str(NODE_MODULES),
                   PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=work,
                                        stdin=subprocess.PIPE, stdout=self.log,
                                        stderr=subprocess.STDOUT, text=True, env=env,
                                        start_new_session=True)
        self.send("set -eo pipefail\n")
        self.count = 0

    def send(self, text):
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def output(self):
        return self.log_path.read_text(errors="replace")

    def run(self, script):
        """Runs a script in the page's shell; returns its output, or raises with it."""
        self.count += 1
        path = self.work / f".block-{self.count}.sh"
        path.write_text(script)
        marker = f"__docs_test_done_{self.count}__"
        start = len(self.output())
        self.send(f"source {path}\necho {marker}\n")
        deadline = time.time() + BLOCK_TIMEOUT
        while True:
            text = self.output()
            if marker in text[start:]:
                return text[start:text.index(marker, start)]
            if self.process.poll() is not None:
                raise PageFailed(f"it failed (exit status {self.process.returncode}):\n"
                                 + text[start:][-4000:])
            if time.time() > deadline:
                raise PageFailed(f"it did not finish in {BLOCK_TIMEOUT} s:\n" + text[start:][-4000:])
            time.sleep(0.05)

    def recorded(self):
        return sorted(p.stem for p in self.requests.glob("*.args"))

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        try:
            self.process.stdin.close()
        except OSError:
            pass
        self.log.close()


# ---------------------------------------------------------------- responses

class Response:
    def __init__(self, requests, n):
        self.args = (requests / f"{n}.args").read_text().splitlines()
        headers = (requests / f"{n}.headers").read_text(errors="replace")
        body = (requests / f"{n}.body").read_text(errors="replace")
        if "-i" in self.args or "--include" in self.args:  # the headers, then the body
            while body.startswith("HTTP/"):
                sep = "\r\n\r\n" if "\r\n\r\n" in body else "\n\n"
                head, _, body = body.partition(sep)
                headers = headers if headers.strip() else head
        # The last response's headers (after any 100 Continue).
        blocks = [b for b in re.split(r"\r?\n\r?\n", headers) if b.strip()]
        head = blocks[-1].splitlines() if blocks else ["HTTP/1.1 000"]
        # 000: no answer (refused, timed out) — or headers written where we could not see.
        self.status = int(head[0].split()[1]) if len(head[0].split()) > 1 else 0
        self.headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.body = body

    def what(self):
        url = next((a for a in self.args if a.startswith("http")), "?")
        method = "GET"
        for flag, value in zip(self.args, self.args[1:]):
            if flag in ("-X", "--request"):
                method = value
        if method == "GET" and any(a in ("-d", "--data", "--data-raw", "--json") for a in self.args):
            method = "POST"
        return f"{method} {url}"

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def pattern(shown):
    parts = re.split(r"…|\.\.\.", shown)
    return re.compile("^" + ".*".join(re.escape(p) for p in parts) + "$", re.S)


def shape_errors(shown, actual, path="$"):
    if shown in ELLIPSIS:
        return []
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return [f"{path}: shown an object, got {json.dumps(actual)[:80]}"]
        errors = []
        for key, value in shown.items():
            if key not in actual:
                errors.append(f"{path}.{key}: shown, but not in the response")
            else:
                errors += shape_errors(value, actual[key], f"{path}.{key}")
        return errors
    if isinstance(shown, list):
        if not isinstance(actual, list):
            return [f"{path}: shown a list, got {json.dumps(actual)[:80]}"]
        if not shown and actual:
            return [f"{path}: shown empty, got {len(actual)} items"]
        if len(actual) < len(shown):
            return [f"{path}: shown {len(shown)} items, got {len(actual)}"]
        errors = []
        for i, value in enumerate(shown):
            errors += shape_errors(value, actual[i], f"{path}[{i}]")
        return errors
    if isinstance(shown, str):
        if not isinstance(actual, str):
            return [f"{path}: shown {json.dumps(shown)}, got {json.dumps(actual)}"]
        if not pattern(shown).match(actual):
            return [f"{path}: shown {json.dumps(shown)}, got {json.dumps(actual)}"]
        return []
    if isinstance(shown, bool) or shown is None:
        return [] if shown == actual and type(shown) is type(actual) else \
            [f"{path}: shown {json.dumps(shown)}, got {json.dumps(actual)}"]
    if isinstance(shown, (int, float)):
        ok = isinstance(actual, (int, float)) and not isinstance(actual, bool)
        return [] if ok else [f"{path}: shown a number, got {json.dumps(actual)}"]
    return [f"{path}: cannot compare {shown!r}"]


def check_response(block, response):
    head, _, body = block.text.partition("\n\n")
    lines = head.strip().splitlines()
    status = re.match(r"^HTTP/[\d.]+\s+(\d{3})", lines[0]) if lines else None
    if not status:
        raise PageFailed(f"line {block.line}: an http block starts with its status line (HTTP/1.1 200 OK)")
    errors = []
    if int(status.group(1)) != response.status:
        errors.append(f"status: shown {status.group(1)}, got {response.status}")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        got = response.headers.get(name.strip().lower())
        if got is None:
            errors.append(f"header {name.strip()}: shown, not sent")
        elif not pattern(value.strip()).match(got):
            errors.append(f"header {name.strip()}: shown {value.strip()!r}, got {got!r}")
    if body.strip():
        try:
            shown = json.loads(body)
        except ValueError as e:
            raise PageFailed(f"line {block.line}: the body shown is not JSON ({e})")
        actual = response.json()
        if actual is None:
            errors.append(f"body: shown JSON, got {response.body[:200]!r}")
        else:
            errors += shape_errors(shown, actual)
    if errors:
        raise PageFailed(f"line {block.line}: the response shown for {response.what()} is not what it answers:\n  "
                         + "\n  ".join(errors) + f"\n  (it answered: {response.body[:600]})")


def dig(document, path):
    value = document
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


# ---------------------------------------------------------------- a page

PLACEHOLDER = re.compile(r"^(\s*export\s+)([A-Z][A-Z0-9_]*)=(\S+)(\s*#.*)?$")
SCOPE = re.compile(r"\b[a-z_]+:[a-z_]+\b")
# A placeholder's comment naming a field of the last response: `# the "data.0.id" above`.
FIELD = re.compile(r'"([\w.]+)"')


class Page:
    def __init__(self, path, stack, work):
        self.path = path
        self.stack = stack
        self.work = work
        self.last = None
        self.filled = {}
        self.skipped = []
        self.examples = 0

    def fill(self, name, value, comment):
        field = FIELD.search(comment or "")
        if name in self.stack.values():
            filled = self.stack.values()[name]
        elif field:
            if self.last is None or self.last.json() is None:
                raise PageFailed(f"{name}: no JSON response before it to take \"{field.group(1)}\" from")
            try:
                filled = str(dig(self.last.json(), field.group(1)))
            except (KeyError, IndexError, ValueError):
                raise PageFailed(f"{name}: the last response has no \"{field.group(1)}\": {self.last.body[:300]}")
        elif value.startswith(("ic_live_", "ic_test_")):
            scopes = SCOPE.findall(comment or "")
            if not scopes:
                raise PageFailed(f"{name}: a key placeholder names its scopes in its comment")
            # The same key for the same placeholder repeated on a page.
            wanted = (name, value[3:7], tuple(scopes))
            if wanted not in self.filled:
                self.filled[wanted] = self.stack.issue_key(name, value[3:7], scopes)
            filled = self.filled[wanted]
        else:
            raise PageFailed(f"{name}: nothing fills this placeholder (no scopes, no \"field\")")
        return filled

    def prepare(self, text):
        out = []
        for line in text.splitlines():
            m = PLACEHOLDER.match(line)
            if m and (m.group(2) in self.stack.values()
                      or any(mark in m.group(3) for mark in ELLIPSIS + ("<",))):
                filled = self.fill(m.group(2), m.group(3), m.group(4))
                line = f"{m.group(1)}{m.group(2)}='{filled}'"
            elif any(mark in line for mark in ELLIPSIS):
                raise PageFailed(f"a placeholder nobody fills: {line.strip()}")
            out.append(line)
        return "\n".join(out) + "\n"

    def run(self):
        shell = Shell(self.work, self.environment())
        try:
            self.run_items(shell)
        finally:
            shell.stop()

    def environment(self):
        return {k: v for k, v in os.environ.items() if not k.startswith(("IC_", "AWS_"))}

    def run_items(self, shell):
        items = read_page(self.path)
        pending = None  # the requests of the last example, its response not yet checked
        for kind, item, line in items:
            if kind == "wait-for":
                text = re.match(r'wait-for\s+"(.*)"', item)
                if not text:
                    raise PageFailed(f"line {line}: wait-for \"TEXT\"")
                deadline = time.time() + 30
                while text.group(1) not in shell.output():
                    if time.time() > deadline:
                        raise PageFailed(f"line {line}: waited 30 s for {text.group(1)!r}; the output:\n"
                                         + shell.output()[-3000:])
                    time.sleep(0.2)
                continue
            block = item
            skip = next((d for d in block.directives if d.startswith("skip")), None)
            if block.lang == "http":
                if skip:
                    continue
                if not pending:
                    raise PageFailed(f"line {block.line}: a response shown with no request before it")
                self.settle(pending[:-1])
                check_response(block, pending[-1])
                self.last = pending[-1]
                pending = None
                continue
            if block.lang not in SHELL_LANGS | PYTHON_LANGS | NODE_LANGS:
                continue
            if skip:
                self.skipped.append(f"line {block.line}: {skip[4:].strip() or '(no reason)'}")
                continue
            if pending:
                self.settle(pending)
                pending = None
            before = set(shell.recorded())
            made = []
            # A shell block runs in parts, each up to a placeholder that takes a field of
            # the response just before it (`export KEY=…   # its "key"`).
            for part in (self.parts(block.text) if block.lang in SHELL_LANGS else [None]):
                try:
                    shell.run(self.script(block) if part is None else self.prepare(part))
                except PageFailed as e:
                    raise PageFailed(f"line {block.line} ({block.lang}): {e}")
                made = [Response(shell.requests, n) for n in shell.recorded() if n not in before]
                if made:
                    self.last = made[-1]
            self.examples += 1
            if made:
                pending = made
        if pending:
            self.settle(pending)

    def settle(self, responses):
        """Requests shown no response must succeed."""
        for response in responses:
            if not 200 <= response.status < 300:
                raise PageFailed(f"{response.what()} answered {response.status} and the page shows no such response:\n"
                                 + response.body[:600])

    def parts(self, text):
        lines, parts, current = text.splitlines(), [], []
        for line in lines:
            m = PLACEHOLDER.match(line)
            takes_field = m and FIELD.search(m.group(4) or "") \
                and m.group(2) not in self.stack.values()
            if takes_field and any(l.strip() and not PLACEHOLDER.match(l) for l in current):
                parts.append("\n".join(current) + "\n")
                current = []
            current.append(line)
        parts.append("\n".join(current) + "\n")
        return parts

    def script(self, block):
        """A Python or Node block as the shell line that runs it (or saves it, when its
        first line names a file). Shell blocks run in parts: see run_items."""
        first = block.text.splitlines()[0] if block.text.strip() else ""
        named = re.match(r"^(?:#|//)\s*([\w.-]+\.(?:py|mjs|js))\s*$", first)
        text = self.prepare(block.text)
        if named:
            (self.work / named.group(1)).write_text(text)
            return ":\n"
        suffix = ".py" if block.lang in PYTHON_LANGS else ".mjs"
        script = self.work / f".example-{block.line}{suffix}"
        script.write_text(text)
        runner = "python3" if block.lang in PYTHON_LANGS else "node"
        return f"{runner} {script.name}\n"


def check_served(stack):
    """The stack serves the built site at /docs/, and the Developers page links to it."""
    import urllib.request
    book = ROOT / "docs" / "book"

    def get(path):
        with urllib.request.urlopen(stack.url + path, timeout=10) as answer:
            return answer.status, answer.read()

    for path, file in [("/docs/", "index.html"), ("/docs/quickstart.html", "quickstart.html"),
                       ("/docs/api.html", "api.html")]:
        status, body = get(path)
        if status != 200 or body != (book / file).read_bytes():
            raise PageFailed(f"the local stack does not serve {file} of docs/book at {path}")
    status, page = get("/settings/developers")
    if b'class="docs-link" href="/docs/"' not in page:
        raise PageFailed("the Developers page does not link to /docs/")


def pages(args):
    if args:
        return [Path(a) if Path(a).exists() else SRC / a for a in args]
    listed = re.findall(r"\]\(([^)#]+\.md)\)", (SRC / "SUMMARY.md").read_text())
    # The README's taste of the quickstart runs too: the front door must open.
    return [ROOT / "README.md"] + [SRC / p for p in dict.fromkeys(listed)]


def main(args):
    failures, total, skipped = [], 0, []
    served = False
    for path in pages(args):
        name = path.relative_to(SRC) if path.is_relative_to(SRC) else \
            path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        if not any(item[0] == "block" and item[1].lang in SHELL_LANGS | PYTHON_LANGS | NODE_LANGS
                   for item in read_page(path)):
            continue
        work = Path(tempfile.mkdtemp(prefix="docs-test-"))
        started = time.time()
        stack = None
        try:
            stack = Stack(work)
            if not served:
                check_served(stack)
                served = True
            # As in the repository's root: .local/env is this stack's, ./target is the build,
            # ./infra holds the tools a page may run (infra/tools/rehearse.sh).
            (work / ".local").mkdir()
            shutil.copy(stack.env_file, work / ".local" / "env")
            (work / "target").symlink_to(BIN.parent)
            (work / "infra").symlink_to(ROOT / "infra")
            if NODE_MODULES.exists():
                (work / "node_modules").symlink_to(NODE_MODULES)
            page = Page(path, stack, work)
            page.run()
            total += page.examples
            skipped += [f"{name} {s}" for s in page.skipped]
            print(f"docs-test: {name}: {page.examples} examples ran as shown "
                  f"({time.time() - started:.0f} s)", flush=True)
            shutil.rmtree(work, ignore_errors=True)
        except PageFailed as e:
            failures.append(f"{name}: {e}")
            print(f"docs-test: {name}: FAILED: {e}\n  (its work folder: {work})", file=sys.stderr, flush=True)
        finally:
            if stack:
                stack.stop()
    for line in skipped:
        print(f"docs-test: skipped, {line}")
    if failures:
        print(f"docs-test: {len(failures)} page(s) failed", file=sys.stderr)
        return 1
    print(f"docs-test: {total} examples ran as their pages show them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
