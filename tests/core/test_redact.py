"""Masking: values and key shapes in text and bytes, a stream cut anywhere, a file rewritten in place."""

from __future__ import annotations

import json
import os

import pytest

from autometta import redact, secrets

#: Built at run time so that no file of this repo holds a key-shaped string.
KEY = "sk-ant-" + "api03-" + "STREAMtestKEY0123456789-wxyz"
VALUE = "hunter2-shapeless-value"  # a secret with no recognisable shape


@pytest.fixture(autouse=True)
def _fresh():
    secrets.forget()
    yield
    secrets.forget()


def test_values_and_shapes_are_masked_to_their_last_four():
    r = redact.Redactor([VALUE])
    assert r.text(f"a {VALUE} b {KEY} c") == "a ****alue b ****wxyz c"
    assert r.bytes(f"a {VALUE} b {KEY}\n".encode()) == b"a ****alue b ****wxyz\n"
    assert redact.Redactor().text(VALUE) == VALUE  # unknown and shapeless: nothing to go by
    assert redact.Redactor(["abc"]).text("abc") == "abc"  # too short to mask


def test_a_value_inside_json_is_masked_in_its_escaped_form_and_the_line_stays_json():
    value = 'pa"ss\\word-1234'
    line = json.dumps({"type": "assistant", "text": f"the key is {value} and {KEY}"})
    out = redact.Redactor([value]).text(line)
    assert value not in out and json.dumps(value)[1:-1] not in out and KEY not in out
    assert json.loads(out)["text"] == "the key is ****1234 and ****wxyz"


def test_secrets_redact_masks_registered_values_and_shapes():
    assert secrets.redact(f"{VALUE} {KEY}") == f"{VALUE} ****wxyz"
    secrets.register(VALUE)
    assert secrets.redact(f"{VALUE} {KEY}") == "****alue ****wxyz"
    assert secrets.redact_doc({"a": [f"x {VALUE}"], KEY: 3}) == {"a": ["x ****alue"], "****wxyz": 3}


@pytest.mark.parametrize("secret", [VALUE, KEY])
def test_a_stream_cut_at_every_byte_never_writes_a_piece_of_a_secret(secret):
    text = f'{{"line": 1}}\nsays {secret} twice {secret}\nno newline at the end: {secret}'.encode()
    r = redact.Redactor([VALUE])
    for cut in range(1, len(text)):
        stream = redact.LineStream(r)
        out = stream.feed(text[:cut]) + stream.partial() + stream.feed(text[cut:]) + stream.partial()
        out += stream.close()
        assert secret.encode() not in out
        for piece in range(8, len(secret)):  # no prefix long enough to tell, either
            assert secret[:piece].encode() not in out.replace(b"****", b"")
        assert out.count(b"\n") == 2 and out.startswith(b'{"line": 1}\n')


def test_whole_lines_go_out_at_once_and_an_unfinished_line_keeps_only_what_could_start_a_secret():
    stream = redact.LineStream(redact.Redactor([VALUE]))
    assert stream.feed(b'{"a": 1}\n{"b"') == b'{"a": 1}\n'
    assert stream.partial() == b""  # shorter than the longest value: all of it could be a secret's start
    assert stream.feed(b": 2}\n") == b'{"b": 2}\n'
    stream.feed(b"progress: 40% done, now sk-ant-api03-" + b"x" * 30)
    assert stream.partial() == b"progress: 40% done, now "  # the key-shaped run waits for its end
    assert stream.close() == b"****xxxx"


def test_a_file_is_masked_in_place_and_keeps_its_inode(tmp_path):
    path = tmp_path / "agent.log"
    lines = [json.dumps({"n": i, "text": f"v={VALUE} k={KEY}" if i % 7 == 0 else "x" * 50}) for i in range(20000)]
    path.write_text("\n".join(lines) + "\n")
    inode = path.stat().st_ino
    fd = os.open(path, os.O_RDWR)
    try:
        assert redact.scrub_fd(fd, redact.Redactor([VALUE])) is True
        assert redact.scrub_fd(fd, redact.Redactor([VALUE])) is False  # nothing left
    finally:
        os.close(fd)
    data = path.read_text()
    assert path.stat().st_ino == inode and VALUE not in data and KEY not in data
    parsed = [json.loads(line) for line in data.splitlines()]
    assert len(parsed) == 20000 and parsed[7]["text"] == "v=****alue k=****wxyz"


#: One key of each shape (built at run time: no file of this repo holds a key-shaped string).
SAMPLES = {
    "anthropic_key": "sk-ant-" + "oat01-" + "a" * 24,
    "openai_key": "sk-" + "proj-" + "b" * 24,
    "aws_access_key": "AKIA" + "C" * 16,
    "github_token": "gh" + "s_" + "d" * 36,
    "slack_token": "xox" + "b-" + "1" * 12,
    "google_api_key": "AI" + "za" + "e" * 35,
    "stripe_key": "sk" + "_live_" + "F" * 24,
    "jwt": "ey" + "JhbGciOiJIUzI1NiJ9." + "ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0." + "Sfl" + "KxwRJSMeKKF2QT4fwpMeJf36",
    "aws_secret_key": "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCY" + "EXAMPLEKEY",
}
#: What precedes a sample in text: a ``name = value`` shape masks only the value.
NAMED = {"aws_secret_key": "aws_secret_access_key = "}


def test_every_shape_is_masked_in_text_bytes_and_a_stream():
    assert set(SAMPLES) == {rule for rule, _ in redact.SHAPES}  # a new shape needs a sample (and a trigger)
    r = redact.Redactor()
    for rule, key in SAMPLES.items():
        name = NAMED.get(rule, "")
        line = f"here: {name}{key} (end)"
        assert r.text(line) == f"here: {name}{redact.mask(key)} (end)", rule
        assert r.bytes(line.encode()) == f"here: {name}{redact.mask(key)} (end)".encode(), rule
        assert r.find(line.encode()) == rule
        stream = redact.LineStream(r)
        assert key.encode() not in stream.feed(line[:12].encode()) + stream.partial() + stream.feed(
            line[12:].encode()) + stream.close()


@pytest.mark.parametrize("rule", ["jwt", "aws_secret_key", "stripe_key"])
def test_a_stream_cut_anywhere_never_writes_a_piece_of_the_new_shapes(rule):
    secret, name = SAMPLES[rule], NAMED.get(rule, "")
    text = f"x\n{name}{secret} and again: export AWS_SECRET_ACCESS_KEY={secret}\n" if rule == "aws_secret_key" \
        else f"x\ntoken {secret}, more\n"
    text = text.encode()
    r = redact.Redactor()
    for cut in range(1, len(text)):
        stream = redact.LineStream(r, hold=0)  # every feed flushes what it safely can
        out = stream.feed(text[:cut]) + stream.partial() + stream.feed(text[cut:]) + stream.partial() + stream.close()
        for piece in range(8, len(secret) + 1):
            assert secret[:piece].encode() not in out.replace(b"****", b""), (cut, out)
        assert secret[-4:].encode() in out  # masked to its last four, not dropped
