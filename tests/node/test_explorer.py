"""The PIPE explorer page, in a real headless Chromium, against real node processes.

What a user would check by looking: a burst's transactions reach ``included`` on the page, a
failing inference shows its reason, a dependent inference shows its deferral, a record shows
the outputs the receipt logged, the charts follow the node; a fresh node; a page left open
while the node restarts. The page follows the node over its WebSocket: these tests check that
it does, that it polls when the WebSocket is refused, and that it connects again after a frame
the node never sends. They measure how long a new block takes to appear, both ways.

Needs Debian's ``chromium`` and Playwright for Python (``pip install playwright``; the system
browser is used, never a downloaded one). Skipped when either is missing, unless
``OGEVM_REQUIRE_BROWSER=1`` (then it fails). ``OGEVM_UPDATE_SCREENSHOT=1`` rewrites
``docs/explorer.png``; other screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import statistics
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import node_helpers
from ogevm.abi.codec import decode_event_data, encode_event_data
from ogevm.abi.contract import ContractInterface
from ogevm.abi.types import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor
from ogevm.tensors import number_to_decimal
from ogevm.testing import strategies

from node_helpers import DEV_KEYS, FIXTURES, REPO, NodeProcess, address_of, model_bytes, new_key, sign

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PRECOMPILE = "0x00000000000000000000000000000000000000f4"
FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]
WAIT_MS = 20_000
FORECAST, CALLER, DEPENDENT = (ContractInterface.from_artifact(FIXTURES / "contracts" / f"{name}.json")
                               for name in ("PriceForecast", "InferenceCaller", "DependentInference"))


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return "chromium is not installed (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _missing_browser()
    if missing is not None:
        if os.environ.get("OGEVM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{missing}, and OGEVM_REQUIRE_BROWSER=1")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


class Pages:
    """Pages opened by one test; at its end, none may have thrown or logged an error."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.contexts = []
        self.problems: list[str] = []
        self.allowed: list[str] = []

    def open(self, url: str, width: int = 1280, height: int = 800, query: str = "", route_socket=None):
        """The page at ``url/query``, once connected; ``route_socket`` handles its WebSockets
        (Playwright's ``route_web_socket``) if given."""
        context = self.browser.new_context(viewport={"width": width, "height": height})
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        if route_socket is not None:
            page.route_web_socket(re.compile(".*"), route_socket)
        page.goto(url + "/" + query)
        page.wait_for_selector('#connection[data-state="up"]')
        return page

    def allow(self, text: str) -> None:
        """Console errors containing ``text`` are expected (a refused connection while the node is down)."""
        self.allowed.append(text)

    def close(self) -> list[str]:
        for context in self.contexts:
            context.close()
        return [p for p in self.problems if not any(a in p for a in self.allowed)]


@pytest.fixture
def pages(browser):
    opened = Pages(browser)
    yield opened
    assert opened.close() == []


def fund_many(node: NodeProcess, count: int) -> list[str]:
    """``count`` fresh keys, funded by dev account 0 in one go."""
    keys = [new_key() for _ in range(count)]
    nonce = int(node.rpc("eth_getTransactionCount", address_of(DEV_KEYS[0]), "pending"), 16)
    hashes = [send(node, DEV_KEYS[0], nonce + i, address_of(k), value=10**20, gas=21_000) for i, k in enumerate(keys)]
    for tx_hash in hashes:
        assert node.wait_receipt(tx_hash)["status"] == "0x1"
    return keys


def send(node: NodeProcess, key: str, nonce: int, to: str | None, data: bytes = b"", **kwargs) -> str:
    raw, tx_hash = sign(key, nonce, to, data, **kwargs)
    assert node.rpc("eth_sendRawTransaction", raw) == tx_hash
    return tx_hash


def decimals(numbers) -> list[str]:
    return [format(number_to_decimal(n), "f") for n in numbers]


def shown_tensor(tensor) -> str:
    """How the page writes a number tensor (from the receipt's values, not the page's code)."""
    return f"{tensor.name} = [{', '.join(decimals(tensor.values))}] (shape {'×'.join(map(str, tensor.shape))})"


def shown_seconds(text: str) -> float:
    """Seconds from how the page writes a duration ("12 ms", "1.25 s")."""
    return float(text.removesuffix(" ms")) / 1000 if text.endswith(" ms") else float(text.removesuffix(" s"))


def open_detail(page, route: str):
    page.evaluate("route => { location.hash = route; }", route)
    return page.locator("#detail")


# --- a burst through PIPE on the shared node -------------------------------------------------
@pytest.fixture(scope="module")
def deployed(node):
    """Models and the three fixture contracts, deployed by a fresh account."""
    cids = {name: node.rpc("og_addModel", "0x" + model_bytes(name).hex()) for name in ("linear_regression", "log_model")}
    (deployer,) = fund_many(node, 1)
    codes = [FORECAST.bytecode + FORECAST.constructor_args(cids["linear_regression"], "x", "y"),
             CALLER.bytecode, DEPENDENT.bytecode]
    hashes = [send(node, deployer, i, None, code, gas=5_000_000) for i, code in enumerate(codes)]
    addresses = [node.wait_receipt(h)["contractAddress"] for h in hashes]
    return cids, dict(zip(("forecast", "caller", "dependent"), addresses))


def test_a_burst_is_shown_as_it_goes_through_pipe(node, deployed, pages, tmp_path):
    cids, at = deployed
    keys = fund_many(node, 4)
    page = pages.open(node.url)
    samples_before = int(page.get_attribute("#chart-pool", "data-samples"))
    nan_request = ModelInferenceRequest(InferenceMode.VANILLA, cids["log_model"],
                                        ModelInput((NumberTensor("x", (Number(-1, 0),), (1, 1)),), ()))
    burst = {
        "forecast": send(node, keys[0], 0, at["forecast"], FORECAST.function("forecast").encode(FEATURES), gas=2_000_000),
        "failing": send(node, keys[1], 0, at["caller"], CALLER.function("infer").encode(nan_request), gas=400_000),
        "dependent": send(node, keys[2], 0, at["dependent"], DEPENDENT.function("chain").encode(
            cids["linear_regression"], cids["log_model"], "x", "y", FEATURES), gas=2_000_000),
        **{f"transfer{i}": send(node, keys[3], i, address_of(keys[0]), value=i + 1, gas=21_000) for i in range(3)},
    }
    receipts = {name: node.wait_receipt(h) for name, h in burst.items()}
    for tx_hash in burst.values():
        page.wait_for_selector(f'#tx-rows tr[data-hash="{tx_hash}"][data-state="included"]')
    page.screenshot(path=str(tmp_path / "burst-overview.png"), full_page=True)
    if os.environ.get("OGEVM_UPDATE_SCREENSHOT") == "1":
        page.screenshot(path=str(REPO / "docs" / "explorer.png"))  # 1280x800, for the README

    # the charts follow the node: more samples, and the latest values are the node's
    head = node.rpc("eth_getBlockByNumber", "latest", False)
    passes = node.rpc("og_pipeStats")["evmPassesPerIncludedTx"]
    page.wait_for_function(
        """([txs, passes]) => document.querySelector('#chart-blocks li[data-series="transactions"]').textContent
             === `transactions: ${txs}` && document.querySelector('#chart-passes li').textContent
             === `passes: ${Number.isInteger(passes) ? passes : passes.toFixed(2)}`""",
        arg=[len(head["transactions"]), passes])
    assert int(page.get_attribute("#chart-pool", "data-samples")) > samples_before
    # each block's build time and the model run time it did not spend, as the node measured them
    built = node.rpc("og_getBlockStats", head["number"])
    cell = page.locator(f'#block-rows tr[data-number="{int(head["number"], 16)}"] td:nth-child(8)').inner_text()
    assert abs(shown_seconds(cell.split(" / ")[0]) - built["buildSeconds"]) <= 0.01
    detail = open_detail(page, f"#/block/{int(head['number'], 16)}")
    saved = detail.locator("dt:text('Model run time the build did not spend') + dd").inner_text()
    assert abs(shown_seconds(saved) - built["inferenceSecondsSaved"]) <= 0.01
    # batch sizes: records signed together share a batch root; the head block's largest batch
    records = [r for n in range(int(head["number"], 16) + 1)
               for h in node.rpc("eth_getBlockByNumber", hex(n), False)["transactions"]
               for r in node.rpc("og_getInferenceRecords", h)]
    size = Counter((r["batch"] or {}).get("root", r["requestId"]) for r in records)
    head_batches = {(r["batch"] or {}).get("root", r["requestId"]) for h in head["transactions"]
                    for r in node.rpc("og_getInferenceRecords", h)}
    largest = max((size[b] for b in head_batches), default=0)
    page.wait_for_function("n => document.querySelector('#chart-batches li[data-series=\"largest batch\"]')"
                           ".textContent === `largest batch: ${n}`", arg=largest)

    # the failing inference: included, reverted, with the executor's reason
    assert receipts["failing"]["status"] == "0x0"
    (failed_record,) = node.rpc("og_getInferenceRecords", burst["failing"])
    detail = open_detail(page, f"#/tx/{burst['failing']}")
    detail.locator(".record").wait_for()
    assert f"reverted: {failed_record['error']}" in detail.inner_text()
    assert detail.locator(".record .error.reason").inner_text() == failed_record["error"]

    # the dependent inference: deferred once, then included; the page's timeline is the node's history
    history = node.rpc("og_getTransactionStatus", burst["dependent"])["history"]
    assert "deferred" in [step["state"] for step in history]
    detail = open_detail(page, f"#/tx/{burst['dependent']}")
    detail.locator(".record").nth(1).wait_for()
    steps = detail.locator(".timeline li")
    assert [steps.nth(i).get_attribute("data-state") for i in range(steps.count())] == [s["state"] for s in history]
    deferral = next(s for s in history if s["state"] == "deferred")
    assert detail.locator('.timeline li[data-state="deferred"] .reason').inner_text() == deferral["reason"]
    page.screenshot(path=str(tmp_path / "dependent.png"), full_page=True)

    # a record: the outputs and inputs on the page are those the receipt logged and the record holds
    (log,) = [entry for entry in receipts["forecast"]["logs"] if entry["address"].lower() == PRECOMPILE]
    _, request, output = decode_event_data(bytes.fromhex(log["data"][2:]))
    (record,) = node.rpc("og_getInferenceRecords", burst["forecast"])
    assert record["output"]["numbers"][0]["decimal"] == decimals(output.numbers[0].values)
    page.fill("#q", record["requestId"])
    page.press("#q", "Enter")
    page.wait_for_selector(f'#detail .record[data-request="{record["requestId"]}"]')
    assert page.locator("#detail .outputs li").all_inner_texts() == [shown_tensor(t) for t in output.numbers]
    assert page.locator("#detail .inputs li").all_inner_texts() == [shown_tensor(t) for t in request.input.numbers]
    assert page.evaluate("document.activeElement.tagName") == "H2"  # focus moved to what was found
    page.screenshot(path=str(tmp_path / "record.png"), full_page=True)

    # an address: what it sent in the blocks the page holds, and its nonce
    sender = address_of(keys[3])
    page.fill("#q", sender)
    page.press("#q", "Enter")
    page.wait_for_selector("#detail h2:text('Address')")
    listed = page.locator("#detail ul.plain a").all_inner_texts()
    assert {burst[f"transfer{i}"] for i in range(3)} <= set(listed)
    nonce = int(node.rpc("eth_getTransactionCount", sender, "latest"), 16)
    assert f"Nonce\n{nonce}\n" in page.locator("#detail dl").inner_text() + "\n"


@pytest.mark.parametrize("query, via", [("", "websocket"), ("?poll=500", "polling")], ids=["websocket", "polling"])
def test_new_blocks_appear_quickly(node, pages, capsys, query, via):
    """From a block's production (its transaction's ``included`` step) to its row on the page,
    following the node's WebSocket (the default) or polling it every 500 ms (``?poll``)."""
    (key,) = fund_many(node, 1)
    page = pages.open(node.url, query=query)
    assert page.get_attribute("#connection", "data-source") == via
    page.evaluate("""() => {
        window.shownAt = {};
        new MutationObserver((changes) => {
          for (const change of changes) for (const row of change.addedNodes) window.shownAt[row.dataset.number] = Date.now();
        }).observe(document.getElementById('block-rows'), {childList: true});
    }""")
    latencies = []
    for nonce in range(6):
        time.sleep(random.uniform(0, 0.5))  # at any moment of the page's poll cycle
        tx_hash = send(node, key, nonce, address_of(DEV_KEYS[0]), value=1, gas=21_000)
        number = int(node.wait_receipt(tx_hash)["blockNumber"], 16)
        included = node.rpc("og_getTransactionStatus", tx_hash)["history"][-1]
        assert included["state"] == "included" and included["block"] == number
        shown = page.wait_for_function("n => window.shownAt[n]", arg=str(number)).json_value()
        latencies.append(shown - included["at"] * 1000)
    with capsys.disabled():
        how = "over WebSocket" if via == "websocket" else "polling every 500 ms"
        print(f"\nexplorer: a new block is shown {statistics.median(latencies):.0f} ms (median; "
              f"max {max(latencies):.0f} ms, n={len(latencies)}) after it is built, {how}")
    assert max(latencies) < 2_000
    if via == "websocket":
        assert statistics.median(latencies) < 250  # pushed: well within what a poll every 500 ms gives


# --- the WebSocket: refused, or sending what the node never sends ---------------------------
def _close_socket(route) -> None:
    """A WebSocket refused (a proxy that does not pass it on, say)."""
    route.close()


def _refuse_subscriptions(route) -> None:
    """A node that serves JSON-RPC over WebSocket but has no ``eth_subscribe``."""
    server = route.connect_to_server()

    def from_page(message: str) -> None:
        calls = json.loads(message)
        if not any(call["method"] == "eth_subscribe" for call in calls):
            server.send(message)
            return
        route.send(json.dumps([{"jsonrpc": "2.0", "id": call["id"], "error": {
            "code": -32601, "message": "the method eth_subscribe does not exist/is not available"}} for call in calls]))

    route.on_message(from_page)


@pytest.mark.parametrize("refuse", [_close_socket, _refuse_subscriptions], ids=["socket closed", "no subscriptions"])
def test_the_page_polls_when_the_websocket_is_refused(node, pages, refuse):
    (key,) = fund_many(node, 1)
    page = pages.open(node.url, route_socket=refuse)
    assert page.get_attribute("#connection", "data-source") == "polling"
    assert "polling every 500 ms" in page.inner_text("#connection")
    tx_hash = send(node, key, 0, address_of(DEV_KEYS[0]), value=1, gas=21_000)
    number = int(node.wait_receipt(tx_hash)["blockNumber"], 16)
    page.wait_for_selector(f'#block-rows tr[data-number="{number}"]')
    page.wait_for_selector(f'#tx-rows tr[data-hash="{tx_hash}"][data-state="included"]')


def test_the_poll_switch_takes_a_sane_interval(node, pages):
    for query, label in [("?poll=abc", "500 ms"), ("?poll=1", "100 ms"), ("?poll=1e12", "60000 ms")]:
        page = pages.open(node.url, query=query)
        assert page.get_attribute("#connection", "data-source") == "polling"
        assert f"polling every {label}" in page.inner_text("#connection")


class Relay:
    """Passes the page's WebSockets on to the node, noting the subscription ids the node gives;
    the test can slip in frames of its own (``routes[i].send``)."""

    SUBSCRIPTION = re.compile(r"0x[0-9a-f]{32}")

    def __init__(self) -> None:
        self.routes = []
        self.subscriptions: list[str] = []

    def __call__(self, route) -> None:
        server = route.connect_to_server()
        server.on_message(lambda message: self._to_page(route, message))
        self.routes.append(route)

    def _to_page(self, route, message: str) -> None:
        answers = json.loads(message)
        if isinstance(answers, list):
            self.subscriptions += [a["result"] for a in answers if self.SUBSCRIPTION.fullmatch(str(a.get("result")))]
        route.send(message)


def _notification(params: dict) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "eth_subscription", "params": params})


#: Frames the node never sends, each with the subscription ids it gave; each drops the connection.
BAD_FRAMES = {
    "not JSON": lambda ids: "{not json",
    "an answer outside a batch": lambda ids: json.dumps({"jsonrpc": "2.0", "id": 1, "result": "0x1"}),
    "answers to a batch never sent": lambda ids: json.dumps([{"jsonrpc": "2.0", "id": 10**9, "result": "0x1"}]),
    "a notification without params": lambda ids: json.dumps({"jsonrpc": "2.0", "method": "eth_subscription", "params": None}),
    # what the node does send when it closes the subscription of a client that read too slowly
    "a subscription closed": lambda ids: _notification({"subscription": ids[-1], "error": {
        "code": -32005, "message": "subscription closed: the client did not read its notifications fast enough"}}),
}


def test_the_page_connects_again_after_frames_the_node_never_sends(node, pages):
    (key,) = fund_many(node, 1)
    relay = Relay()
    page = pages.open(node.url, route_socket=relay)
    assert page.get_attribute("#connection", "data-source") == "websocket" and len(relay.routes) == 1
    # a notification of a subscription the page does not hold is not worth a new connection
    relay.routes[-1].send(_notification({"subscription": "0x" + "0" * 32, "result": {"number": "0x0"}}))
    for name, frame in BAD_FRAMES.items():
        connections = len(relay.routes)
        relay.routes[-1].send(frame(relay.subscriptions))
        deadline = time.monotonic() + WAIT_MS / 1000
        while len(relay.routes) == connections and time.monotonic() < deadline:
            page.wait_for_timeout(20)
        assert len(relay.routes) == connections + 1, f"no new connection after {name}"
        page.wait_for_selector('#connection[data-state="up"][data-source="websocket"]')
    assert len(relay.routes) == 1 + len(BAD_FRAMES)
    # and it reads the chain again: a new block and its transaction
    tx_hash = send(node, key, 0, address_of(DEV_KEYS[0]), value=1, gas=21_000)
    number = int(node.wait_receipt(tx_hash)["blockNumber"], 16)
    page.wait_for_selector(f'#block-rows tr[data-number="{number}"]')
    page.wait_for_selector(f'#tx-rows tr[data-hash="{tx_hash}"][data-state="included"]')

# --- a fresh node, and one that restarts ------------------------------------------------------
@pytest.fixture(scope="module")
def durable_node(tmp_path_factory):
    process = NodeProcess(tmp_path_factory.mktemp("explorer") / "node.log",
                          data_dir=tmp_path_factory.mktemp("explorer-data"))
    process.start()
    yield process
    process.stop()


def test_a_fresh_node_shows_its_few_blocks_and_empty_lists(durable_node, pages, tmp_path):
    page = pages.open(durable_node.url)
    head = int(durable_node.rpc("eth_blockNumber"), 16)
    page.wait_for_function("n => document.querySelectorAll('#block-rows tr').length === n", arg=head + 1)
    txs = sum(len(durable_node.rpc("eth_getBlockByNumber", hex(n), False)["transactions"]) for n in range(head + 1))
    assert page.locator("#tx-rows tr").count() == txs
    assert page.locator("#records-empty").is_visible() and page.locator("#models-empty").is_visible()
    assert not page.locator("#blocks-empty").is_visible()
    assert page.locator("#chart-inflight li").inner_text() == "in flight: 0"
    page.screenshot(path=str(tmp_path / "fresh.png"), full_page=True)

    # keyboard: the skip link first, then the search finds the genesis block and focuses its details
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.focus("#q")
    page.keyboard.type("0")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail h2:focus")
    assert page.locator("#detail h2").inner_text().startswith("Block #0")
    # bad and unknown searches get a readable answer
    page.fill("#q", "not a hash")
    page.keyboard.press("Enter")
    assert page.get_attribute("#q", "aria-invalid") == "true"
    assert "block number" in page.locator("#search-error").inner_text()
    unknown = "0x" + "ab" * 32
    page.fill("#q", unknown)
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail h2:text('Not found')")
    assert unknown in page.locator("#detail").inner_text()
    for route, title in [(f"#/block/{head + 1000}", "No such block yet"), ("#/block/-1", "Not a block number"),
                         ("#/request/0x12:0", "Not a request id"), ("#/address/0x12", "Not an address"),
                         (f"#/tx/{unknown}", "Unknown transaction"), (f"#/request/{unknown}:3", "Unknown request"),
                         ("#/tx/0xzz", "Not a transaction hash"), ("#/hash/%E0%A4%A", None), ("#/nowhere", None)]:
        page.evaluate("route => { location.hash = route; }", route)
        if title is None:  # not a route: the overview, details closed
            page.wait_for_selector("#detail", state="hidden")
        else:
            page.wait_for_selector(f"#detail h2:text('{title}')")

    # a narrow window: nothing wider than the screen
    narrow = pages.open(durable_node.url, width=390, height=844)
    narrow.evaluate("location.hash = '#/block/1'")
    narrow.wait_for_selector("#detail h2:focus")
    assert narrow.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    narrow.screenshot(path=str(tmp_path / "narrow.png"), full_page=True)


def test_the_page_reconnects_after_a_node_restart(durable_node, pages, monkeypatch, tmp_path):
    page = pages.open(durable_node.url)
    head = int(durable_node.rpc("eth_blockNumber"), 16)
    page.wait_for_selector(f'#block-rows tr[data-number="{head}"]')
    assert page.get_attribute("#connection", "data-source") == "websocket"
    pages.allow("ERR_CONNECTION_REFUSED")
    durable_node.stop()
    page.wait_for_selector('#connection[data-state="down"]')
    page.screenshot(path=str(tmp_path / "node-down.png"))
    monkeypatch.setattr(node_helpers, "free_port", lambda: durable_node.port)  # the same address
    durable_node.start()
    page.wait_for_selector('#connection[data-state="up"][data-source="websocket"]')  # not fallen back to polling
    restarted = int(durable_node.rpc("eth_blockNumber"), 16)
    assert restarted > head  # each start registers the enclave in a block
    page.wait_for_selector(f'#block-rows tr[data-number="{restarted}"]')
    # the pool's new transactions are followed again (a new filter on the new process)
    tx_hash = durable_node.rpc("eth_sendTransaction", {"from": address_of(DEV_KEYS[1]), "to": address_of(DEV_KEYS[2]),
                                                       "value": "0x1"})
    durable_node.wait_receipt(tx_hash)
    page.wait_for_selector(f'#tx-rows tr[data-hash="{tx_hash}"][data-state="included"]')
    page.screenshot(path=str(tmp_path / "reconnected.png"))


# --- the page's own decoding, against the Python codec ------------------------------------------
@pytest.fixture(scope="module")
def decoder_page(browser, durable_node):
    context = browser.new_context()
    page = context.new_page()
    page.goto(durable_node.url + "/")
    page.evaluate("async () => { window.abi = await import('/explorer/abi.js'); }")
    yield page
    context.close()


def _expected(tensors) -> list[dict]:
    return [{"name": t.name, "shape": list(t.shape), "values": [number_to_decimal(v) for v in t.values]} for t in tensors]


def _as_decimals(tensors) -> list[dict]:
    return [{"name": t["name"], "shape": t["shape"], "values": [Decimal(d) for d in t["decimal"]]} for t in tensors]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=strategies.inference_requests(), output=strategies.model_outputs(), inference_id=st.text(max_size=20))
def test_the_page_decodes_inference_events_as_the_python_codec(decoder_page, request, output, inference_id):
    data = "0x" + encode_event_data(inference_id, request, output).hex()
    event = decoder_page.evaluate("data => window.abi.decodeInferenceEvent(data)", data)
    assert (event["inferenceId"], event["mode"], event["modelCid"]) == (inference_id, request.mode.name, request.model_cid)
    assert _as_decimals(event["inputs"]["numbers"]) == _expected(request.input.numbers)
    assert _as_decimals(event["outputs"]["numbers"]) == _expected(output.numbers)
    assert event["inputs"]["strings"] == [{"name": t.name, "values": list(t.values)} for t in request.input.strings]
    assert event["outputs"]["jsons"] == [{"name": j.name, "value": j.value} for j in output.jsons]


@pytest.mark.parametrize("data", ["0x", "0x1", "nonsense", "0x" + "00" * 31, "0x" + "ff" * 96,
                                  "0x" + "00" * 31 + "20" + "ff" * 32 + "00" * 64])
def test_the_page_refuses_data_that_is_not_an_inference_event(decoder_page, data):
    error = decoder_page.evaluate("""data => { try { window.abi.decodeInferenceEvent(data); return null; }
                                               catch (e) { return e.message; } }""", data)
    assert error and ("past the end" in error or error == "not hex data")
