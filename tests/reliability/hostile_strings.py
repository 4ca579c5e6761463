"""A corpus of 200 hostile strings for the API's string parameters (R14): NUL and lone
surrogates, SQL meta characters and injections, LIKE wildcards and escapes, Unicode
normalisation forms, right-to-left text, emoji, JSON fragments, very long strings."""

from __future__ import annotations

CORPUS_SIZE = 200

_BASE = [
    # what no column can store
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\x00' OR 1=1 --",
    # SQL meta characters and injections
    "'",
    "''",
    '"',
    "`",
    ";",
    "' OR 1=1 --",
    "' OR '1'='1",
    '" OR "1"="1',
    "'; DROP TABLE jobs; --",
    "1; DELETE FROM job_history --",
    "' UNION SELECT id FROM servers --",
    "1' AND SLEEP(5)#",
    "'||pg_sleep(5)||'",
    "admin'--",
    "/* comment */",
    "-- ",
    "#",
    "\\'",
    "\\\\'",
    "E'\\x27'",
    "$$",
    "$1",
    ":payload",
    "%(payload)s",
    "?",
    "{0}",
    "\\N",
    "CHAR(39)",
    "0x27",
    # LIKE wildcards and escapes
    "%",
    "_",
    "\\",
    "%%",
    "a%c",
    "a_c",
    "a\\c",
    "\\%",
    "\\_",
    "[a-z]",
    "[%]",
    "^",
    "*",
    ".*",
    "% off_",
    "100%",
    # Unicode: normalisation forms, case folding, look-alikes
    "caf\u00e9",
    "cafe\u0301",
    "\ufb01",
    "\u212b",
    "\u00c5",
    "Stra\u00dfe",
    "STRASSE",
    "\u0130",
    "\u0131",
    "\uff05",
    "\u02bc",
    # right-to-left, invisible and control characters
    "\u202e",
    "\u202egnp.exe",
    "\u0645\u0631\u062d\u0628\u0627",
    "\u200f",
    "\u200b",
    "\ufeff",
    "\r\n",
    "\t",
    " ",
    "\x1a",
    "\x7f",
    # emoji
    "\U0001f600",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\U0001f1fa\U0001f1f8",
    "\U0001f600 smile",
    # JSON fragments
    "{",
    "}",
    "[]",
    '{"a":1}',
    '"message"',
    '": "',
    '\\"',
    "\\u0000",
    "\\ud800",
    "null",
    "NaN",
    "1e309",
    # paths, markup and templates
    "../../etc/passwd",
    "..%2F..%2F",
    "%00",
    "%27",
    "+",
    "&",
    "=",
    "?x=1&y=2",
    "<script>alert(1)</script>",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    # very long
    "a" * 200,
    "a" * 201,
    "%" * 200,
    "'" * 5000,
    "\u00e9" * 1000,
    "\U0001f600" * 300,
]


def hostile_corpus() -> list[str]:
    """CORPUS_SIZE distinct hostile strings: the base list, then each of its short members
    inside benign text and doubled, until the size is reached."""
    corpus = list(dict.fromkeys(_BASE))
    short = [text for text in _BASE if len(text) <= 40]
    for variant in ([f"a{text}c" for text in short], [f"O{text}Brien" for text in short]):
        corpus.extend(text for text in variant if text not in corpus)
    return corpus[:CORPUS_SIZE]
