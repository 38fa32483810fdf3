"""The WWW-Authenticate parser (RFC 9110 §11.6.1): the grammar's cases by example, then fuzzed
(SECURITY.md EH-05): garbage raises only MalformedChallenge, every well-formed header built from
generated challenges reads back exactly, and broken quoting is refused, never half-read."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kt_login.www_authenticate import (
    Challenge,
    MalformedChallenge,
    challenge,
    find,
    parse,
    quoted,
)

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def test_rfc9470_step_up_challenge():
    header = (
        'Bearer error="insufficient_user_authentication",'
        ' error_description="A different authentication level is required",'
        ' acr_values="myACR", max_age=5'
    )
    assert parse(header) == [
        Challenge(
            "bearer",
            {
                "error": "insufficient_user_authentication",
                "error_description": "A different authentication level is required",
                "acr_values": "myACR",
                "max_age": "5",
            },
        )
    ]


def test_several_challenges_in_one_header_and_quoted_pairs():
    # RFC 9110 §11.6.1's own example
    header = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    assert parse(header) == [
        Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        Challenge("basic", {"realm": "simple"}),
    ]


def test_several_headers_are_one_list_and_find_picks_the_scheme():
    found = parse(['Basic realm="x"', 'DPoP algs="ES256", Bearer scope="a b"'])
    assert [c.scheme for c in found] == ["basic", "dpop", "bearer"]
    bearer = find(found, "BEARER")
    assert bearer is not None and bearer.param("Scope") == "a b"
    assert find(found, "negotiate") is None


def test_token68_bare_schemes_empty_elements_and_bws():
    assert parse("Negotiate YWJj==, , Bearer") == [
        Challenge("negotiate", token68="YWJj=="),
        Challenge("bearer"),
    ]
    assert parse("") == [] and parse(" , ,") == []
    assert parse('Bearer realm = x ,, scope="a"') == [
        Challenge("bearer", {"realm": "x", "scope": "a"})
    ]
    # `realm=` is a well-formed token68 (§11.2), not a parameter without a value
    assert parse("Bearer realm=") == [Challenge("bearer", token68="realm=")]


@pytest.mark.parametrize(
    "header",
    [
        'Bearer realm="unterminated',
        'Bearer realm="a\\',  # a backslash escaping nothing
        'Bearer realm="bell\x07"',
        'Bearer realm="x"y',
        'Bearer realm="x" scope="y"',  # a missing comma
        'Bearer realm=x, realm="y"',  # a parameter twice
        'Bearer REALM=x, realm="y"',
        "Bearer a=@",
        "Bearer abc== x",
        "Bearer a=b, c=",
        '"Bearer"',
        "=x",
        'Bearer realm="\u20ac"',  # beyond obs-text: not a Latin-1 header
    ],
)
def test_malformed_is_refused(header):
    with pytest.raises(MalformedChallenge):
        parse(header)


def test_challenge_writes_what_parse_reads():
    header = challenge(
        "Bearer",
        {"error": "insufficient_scope", "scope": 'a "b" \\c', "max_age": 0},
    )
    assert header == 'Bearer error="insufficient_scope", scope="a \\"b\\" \\\\c", max_age=0'
    assert parse(header)[0].params == {
        "error": "insufficient_scope",
        "scope": 'a "b" \\c',
        "max_age": "0",
    }
    with pytest.raises(ValueError):
        quoted("line\nbreak")
    with pytest.raises(ValueError):
        challenge("Bear er", {})


# --- fuzzing -----------------------------------------------------------------------------------

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
# everything a quoted-string may carry: HTAB, SP, VCHAR, obs-text
quotable = st.text(
    alphabet=st.sampled_from(
        ["\t", " ", *map(chr, range(0x21, 0x7F)), *map(chr, range(0x80, 0x100))]
    ),
    max_size=20,
)
values = quotable | st.integers(min_value=0, max_value=10**6)
param_maps = st.dictionaries(tokens.map(str.lower), values, max_size=5)
token68s = st.from_regex(r"[A-Za-z0-9\-._~+/]{1,16}={0,2}", fullmatch=True)
challenges = st.tuples(tokens, param_maps | token68s)


def _written(scheme: str, body: dict[str, str | int] | str) -> str:
    return f"{scheme} {body}" if isinstance(body, str) else challenge(scheme, body)


def _expected(scheme: str, body: dict[str, str | int] | str) -> Challenge:
    if isinstance(body, str):
        return Challenge(scheme.lower(), token68=body)
    return Challenge(scheme.lower(), {k: str(v) for k, v in body.items()})


@FUZZ
@given(st.lists(challenges, max_size=4), st.sampled_from([", ", ",", " ,  , ", ",\t"]))
def test_well_formed_headers_round_trip(items, separator):
    header = separator.join(_written(s, b) for s, b in items)
    assert parse(header) == [_expected(s, b) for s, b in items]


@FUZZ
@given(st.lists(challenges, min_size=1, max_size=4))
def test_several_header_fields_read_as_one_list(items):
    fields = [_written(s, b) for s, b in items]
    assert parse(fields) == [_expected(s, b) for s, b in items]


garbage_alphabet = st.sampled_from(list(' \t,="\\=abcXYZ09!#~/+\x00\x07\x7f\u00e9\u20ac\n;:()'))


@FUZZ
@given(st.text(alphabet=garbage_alphabet, max_size=60) | st.text(max_size=60))
def test_garbage_raises_only_malformed_challenge(header):
    try:
        found = parse(header)
    except MalformedChallenge as exc:
        assert 0 <= exc.where <= len(header)
        return
    # whatever is accepted reads back the same once written again
    for c in found:
        rewritten = _written(c.scheme, c.token68 if c.token68 is not None else dict(c.params))
        assert parse(rewritten) == [c]


@FUZZ
@given(tokens, tokens.map(str.lower), quotable, st.sampled_from(["cut", "bare-backslash", "ctl"]))
def test_malformed_quoting_is_refused(scheme, name, value, damage):
    good = challenge(scheme, {"a" + name: value, "z": "tail"})
    if damage == "cut":  # the closing quote of the last value lost
        header = good[:-1]
    elif damage == "bare-backslash":  # a value ending in an escape of nothing
        header = f'{scheme} {name}="{value.replace(chr(92), "").replace(chr(34), "")}\\'
    else:  # a control character inside the quotes
        header = f'{scheme} {name}="{value.replace(chr(34), "")}\x01"'
    with pytest.raises(MalformedChallenge):
        parse(header)
