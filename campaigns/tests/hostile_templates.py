"""Hostile templates (issue 12): each must end with a clear error, fast and small.

Used by ``test_template_dos.py`` (each payload in a child process under a 1 GiB address
space limit) and by ``bench/templates.py`` (time and peak memory per payload).

``python -m campaigns.tests.hostile_templates NAME [--tracemalloc]`` renders one payload
and prints one JSON line: the outcome (exception class), its message, the seconds the
render took and the peak memory it added.
"""

from __future__ import annotations

import json
import resource
import sys
import time

BIG = "{% set big = 'a' * 90000 %}"  # just under the value limit

PAYLOADS: dict[str, str] = {
    # Growth by repeated operators, unrolled (``set`` inside a loop does not carry over).
    "int squaring x = x * x": "{% set x = 99 %}" + "{% set x = x * x %}" * 40 + "{{ x }}",
    "int power tower": "{{ 999999 ** 100 ** 100 }}",
    "string doubling with ~": "{% set x = 'ab' %}" + "{% set x = x ~ x %}" * 40 + "{{ x }}",
    "string doubling with +": "{% set x = 'ab' %}" + "{% set x = x + x %}" * 40 + "{{ x }}",
    "string doubling with *": "{% set x = 'ab' %}" + "{% set x = x * 2 %}" * 40 + "{{ x }}",
    "list doubling with +": "{% set x = [1, 2] %}" + "{% set x = x + x %}" * 40 + "{{ x }}",
    "list multiplication": "{% set x = [1] * 10000 %}{% set y = [x] * 10000 %}{{ y }}",
    "nested list literals printed": (
        "{% set x = ['a' * 1000] %}" + "{% set x = [x, x] %}" * 40 + "{{ x }}"
    ),
    "nested list literals compared": (
        "{% set x = ['a' * 1000] %}{% set y = ['a' * 1000] %}"
        + "{% set x = [x, x] %}{% set y = [y, y] %}" * 40
        + "{{ x == y }}"
    ),
    "nested list literals sorted": (
        "{% set x = ['a' * 1000] %}" + "{% set x = [x, x] %}" * 40 + "{{ [x, x]|sort }}"
    ),
    "nested dict literals printed": (
        "{% set x = {'k': 'a' * 1000} %}" + "{% set x = {'a': x, 'b': x} %}" * 40 + "{{ x }}"
    ),
    "in test on nested lists": (
        "{% set x = ['a' * 1000] %}" + "{% set x = [x, x] %}" * 40 + "{{ 'b' in x }}"
    ),
    # Filters that grow their input.
    "replace one char by a big string": BIG + "{{ big|replace('a', big) }}",
    "replace doubling": "{% set x = 'ab' %}" + "{% set x = x|replace('a', 'aa') %}" * 40 + "x",
    "join with a big separator": BIG + "{{ range(1000)|join(big) }}",
    "join doubling": "{% set x = 'ab' %}" + "{% set x = [x, x]|join %}" * 40 + "{{ x }}",
    "center": "{{ 'a'|center(1000000000) }}",
    "format filter": "{{ '%1000000000s'|format('a') }}",
    "wordwrap": BIG + "{{ big|wordwrap(1) }}",
    "indent": BIG + "{{ big|indent(1000000) }}",
    "str methods ljust rjust center": "{{ 'a'.ljust(10**9) }}{{ 'a'.center(10**9) }}",
    "str.format method": "{{ '{:>1000000000}'.format('a') }}",
    "percent formatting": "{{ '%1000000000s' % 'a' }}",
    "urlencode growth": "{% set x = '<' * 60000 %}{{ x|urlencode|urlencode }}",
    "escape growth": "{% set x = '<' * 60000 %}{{ (x|e|string ~ '')|e }}",
    "batch fill": "{{ range(10)|batch(1000000000, 'x')|list }}",
    "slice into a billion": "{{ range(10)|slice(1000000000)|list }}",
    "sum of lists": "{% set x = [[1] * 10000] * 10000 %}{{ x|sum(start=[]) }}",
    "round to huge precision": "{{ 5|round(-1000000000) }}{{ 1.5|round(1000000000, 'floor') }}",
    "trim with a big char set": BIG + "{{ big|trim('b' * 50000 ~ 'a') }}",
    "list of a big string": BIG + "{{ (big * 10)|list }}",
    # Slicing and output.
    "slicing in a loop": BIG + "{% for i in range(1000) %}{{ big[i:] }}{% endfor %}",
    "slicing doubled": "{% set x = 'ab' %}" + "{% set x = (x ~ x)[0:] %}" * 40 + "{{ x }}",
    "output flood": "{% for i in range(1000) %}{{ 'a' * 90000 }}{% endfor %}",
    "macro output flood": (
        "{% macro m() %}{% for i in range(1000) %}{{ 'a' * 90000 }}{% endfor %}{% endmacro %}"
        "{% set y = m() %}{{ y|length }}"
    ),
    "set block flood": (
        BIG + "{% set y %}{% for i in range(1000) %}{{ big }}{% endfor %}{% endset %}{{ y|length }}"
    ),
    "filter block flood": (
        BIG + "{% filter upper %}{% for i in range(1000) %}{{ big }}{% endfor %}{% endfilter %}"
    ),
    "caller flood": (
        "{% macro m() %}{% for i in range(1000) %}{{ caller() }}{% endfor %}{% endmacro %}"
        "{% call m() %}{{ 'a' * 90000 }}{% endcall %}"
    ),
    "many big sets": "{% set a = 'x' * 99000 %}" * 600,
    # Loops and recursion.
    "nested loops over range": (
        "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
        "{{ c }}{% endfor %}{% endfor %}{% endfor %}"
    ),
    "busy loop body": (
        "{% for a in range(1000) %}{% for b in range(20) %}"
        "{{ (range(1000)|list|sort|join(','))|length }}{% endfor %}{% endfor %}"
    ),
    "loop over a long string": BIG + "{% for c in big %}{{ c }}{% endfor %}",
    "macro recursion doubling a string": (
        "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}"
        "{% endif %}{% endmacro %}{{ d('ab', 60) }}"
    ),
    "macro recursion doubling a list": (
        "{% macro d(s, n) %}{% if n %}{{ d([s, s], n - 1) }}{% else %}{{ s }}"
        "{% endif %}{% endmacro %}{{ d('ab', 60) }}"
    ),
    "macro binary recursion": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    ),
    "macro deep recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    # Sources that are costly to parse or compile (each under the 256 KiB source cap).
    "many tags": "{{ contact.first_name }}" * 10000,
    "long operator chain": "{{ " + "1 + " * 50000 + "1 }}",
    "deep brackets": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "deep blocks": "{% if 1 %}" * 600 + "x" + "{% endif %}" * 600,
    "nested loops 25 deep": "{% for i in range(1) %}" * 25 + "x" + "{% endfor %}" * 25,
    "nested macros 100 deep": "{% macro m() %}" * 100 + "x" + "{% endmacro %}" * 100,
    "long list literal": "{{ [" + "1, " * 80000 + "1] }}",
    # Escapes.
    "dunder class": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "attr filter": "{{ ''|attr('__class__') }}",
    "dunder subscript": "{{ contact['__class__'] }}",
}

CONTEXT = {
    "contact": {"first_name": "Ann", "email": "ann@example.test"},
    "phi": {"age": 50},
    "org": {"name": "Clinic", "postal_address": "1 Main St"},
    "unsubscribe_url": "https://x.test/u/t/",
    "preferences_url": "https://x.test/u/t/preferences/",
}

REALISTIC = """<html><body>
<h1>Hello {{ contact.first_name|default('there')|title }},</h1>
<p>{{ org.name }} would like to remind you about your next visit.</p>
{% if phi.age and phi.age > 40 %}
<p>At {{ phi.age }}, a yearly check-up is recommended.</p>
{% endif %}
<table>
{% for row in phi.conditions|default([])|batch(2) %}
  <tr>{% for item in row %}<td>{{ loop.index }}. {{ item|capitalize }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% macro button(url, label) %}
<a href="{{ url }}" style="padding:8px">{{ label|upper }}</a>
{% endmacro %}
<p>{{ button(preferences_url, 'Your preferences') }}</p>
<p>{{ ('Dear ' ~ contact.first_name ~ ', see you soon')|truncate(60) }}</p>
<ul>{% for i in range(10) %}
<li>Tip {{ i + 1 }}: {{ ['rest', 'water', 'walk'][i % 3] }}</li>
{% endfor %}</ul>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · {{ org.postal_address }}</p>
</body></html>
"""
REALISTIC_CONTEXT = {
    **CONTEXT,
    "phi": {"age": 52, "conditions": ["asthma", "diabetes", "hypertension", "migraine"]},
}


def _current_rss_kb() -> int:
    """Resident memory now (``ru_maxrss`` is the peak, which imports may have set)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_one(name: str, *, trace: bool) -> dict[str, object]:
    """Render one payload here, returning what happened and what it cost."""
    import tracemalloc

    from campaigns.content.templating import TemplateError, render_string

    source = PAYLOADS[name]
    render_string("{{ contact.first_name }}", CONTEXT, html=True)  # warm imports
    before = _current_rss_kb()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    outcome, message = "ok", ""
    try:
        render_string(source, CONTEXT, html=True)
    except TemplateError as error:
        outcome, message = type(error).__name__, str(error)
    except BaseException as error:  # reported to the parent as the failure
        outcome, message = type(error).__name__, str(error)[:200]
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "name": name,
        "outcome": outcome,
        "message": message,
        "seconds": seconds,
        "maxrss_delta_kb": max(after - before, 0),
        "tracemalloc_peak": peak,
    }


if __name__ == "__main__":
    sys.setrecursionlimit(1000)
    result = run_one(sys.argv[1], trace="--tracemalloc" in sys.argv)
    sys.stdout.write(json.dumps(result) + "\n")
