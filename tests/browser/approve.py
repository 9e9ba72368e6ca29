"""Opens an approval link in headless Chromium (Debian's, driven by
Playwright), reads the page, presses its one button and reads the result;
with --again, goes back and presses it a second time. Prints what it saw as
one JSON object. Used by tests/tests/emulator/approval.rs; loopback only.

    approve.py URL [--again] [--screenshot FILE]
"""

import json
import sys

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this
# machine cannot reach.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def text(page, selector):
    el = page.query_selector(selector)
    return el.text_content().strip() if el else None


def press(page):
    with page.expect_navigation() as nav:
        page.click("#decide")
    resp = nav.value
    return {
        "method": resp.request.method,
        "status": resp.status,
        "h1": text(page, "h1"),
        "result": text(page, "#result"),
    }


def main(argv):
    url = argv[1]
    again = "--again" in argv
    shot = argv[argv.index("--screenshot") + 1] if "--screenshot" in argv else None
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        page = browser.new_page()
        resp = page.goto(url)
        out["get"] = {
            "status": resp.status,
            "title": page.title(),
            "h1": text(page, "h1"),
            "change": text(page, "#change"),
            "incident": text(page, "#incident"),
            "done": text(page, "#done"),
            "expires": text(page, "#expires"),
            "forms": len(page.query_selector_all("form[method=post]")),
            "csp": resp.headers.get("content-security-policy"),
        }
        if shot:
            page.screenshot(path=shot, full_page=True)
        out["press"] = press(page)
        if again:
            page.go_back()
            out["again"] = press(page)
        browser.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
