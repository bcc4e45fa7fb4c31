"""The operator web view of `sxctl serve --http`, in a real headless Chromium (Debian's chromium and
chromium-driver through selenium): one 4-stage gateway over virtual boards whose sensors a test
plant drives, one browser session for every check."""
import json
import math
import os
import pathlib
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from simboards import SXCTL, start_sim
from sxproto import messages
from test_log import wait_for

from sxctl import store
from sxctl.bench.gateway import free_port
from sxctl.gateway import api, state
from sxctl.gateway.web import auth
from sxctl.sim.steady import PlantDriver, Stage

STAGES = (1, 2, 3, 4)
FAULTY = 2  # the stage whose pH electrode the test takes to the rail
USER, PASSWORD = "operator", "correct horse battery"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
BUILD = pathlib.Path(__file__).resolve().parents[2] / "build"
# The page shows a new poll round within a period plus this (the push waits for the round's end).
PAGE_DEADLINE_S = 20.0  # generous: the test machine is shared; the bench measures the real figure
PH_BIT = next(b for b, n in messages.ALARMS.items() if n == "ph_sensor_fault")
DECIMALS = {"ph": 2, "ph_setpoint": 2, "orp_mv": 0, "temperature": 1, "flow_aq": 3, "flow_org": 3,
            "base_dose": 2, "reagent_dose": 2, "aq_pump": 1, "org_pump": 1}


class WebGateway:
    def __init__(self, folder):
        self.folder = folder
        self.sim = start_sim(folder, "--stages", str(len(STAGES)), "--plant-link")
        self.plant = PlantDriver(self.sim.ports, {a: Stage(ph=1.2 + 0.15 * a) for a in STAGES})
        self.users = folder / "web-users"
        auth.add_user(self.users, USER, PASSWORD)
        self.state_dir = folder / "state"
        self.db = folder / "log.sqlite"
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        # The faulty stage holds the plant key: it takes only an acknowledge the gateway signed.
        key_file = folder / "plant.key"
        plant = folder / "plant.toml"
        plant.write_text('[bus]\nport = "%s"\nkey_file = "%s"\n\n' % (self.sim.bus, key_file) + "".join(
            '[[stage]]\naddress = %d\nname = "E%d"\nrole = "extraction"\n\n' % (a, a) for a in STAGES))
        env = dict(os.environ, SXCTL_STATE_DIR=str(self.state_dir), SXCTL_WEB_USERS=str(self.users))
        for args in (("key", "new", "--key-file", str(key_file)),
                     ("key", "provision", "--port", self.sim.usb(FAULTY), "--key-file", str(key_file), "--bus", self.sim.bus)):
            done = subprocess.run(SXCTL + list(args), capture_output=True, text=True, timeout=120, env=env)
            assert done.returncode == 0, done.stdout + done.stderr
        self.err = open(folder / "serve.err", "w")
        self.proc = subprocess.Popen(SXCTL + ["serve", "--plant", str(plant), "--db", str(self.db), "--modbus", "off",
                                              "--http", "127.0.0.1:%d" % self.port],
                                     stdout=subprocess.DEVNULL, stderr=self.err, env=env)
        wait_for(lambda: self.proc.poll() is not None or state.find(self.sim.bus, self.state_dir), timeout=60,
                 what="the gateway's state file")
        assert self.proc.poll() is None, self.log()

    def log(self):
        return (self.folder / "serve.err").read_text()

    def board_alarms(self, addr):
        """The board's own alarm state, read through the gateway as `sxctl` would."""
        with api.GatewayBus(state.find(self.sim.bus, self.state_dir)) as bus:
            return bus.request(addr, messages.ALARMS_READ, expect=messages.ALARM_STATE).values

    def board_record(self, addr, record):
        with api.GatewayBus(state.find(self.sim.bus, self.state_dir)) as bus:
            reply = bus.request(addr, messages.BACKLOG_READ, {"since": record - 1, "count": 0}, messages.BACKLOG).values
        return next(r for r in reply["records"][:reply["count"]] if r["record"] == record)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.err.close()
        self.plant.stop()
        self.sim.stop()


class Browser:
    """One headless Chromium; every request the page makes is kept from the performance log."""

    def __init__(self):
        for path in (CHROMIUM, CHROMEDRIVER):
            assert shutil.which(path), "%s is missing: run `make setup` (apt-get install chromium chromium-driver)" % path
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    # a host other than the gateway does not resolve: the page must not need one
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.requests = []

    def collect_requests(self):
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
        return self.requests

    def tiles(self):
        """Every tile as the page shows it now, read in one go: {addr: {record, field: text}}."""
        return self.driver.execute_script("""
            const out = {};
            for (const t of document.querySelectorAll('#overview .tile')) {
              const row = {record: t.dataset.record, classes: t.className};
              for (const f of t.querySelectorAll('[data-field]')) row[f.dataset.field] = f.textContent;
              out[t.id.slice(6)] = row;
            }
            return out;""")

    def alarm_rows(self):
        return self.driver.execute_script("""
            return [...document.querySelectorAll('#alarms tbody tr[data-alarm]')].map(
                r => ({stage: Number(r.dataset.stage), alarm: r.dataset.alarm, state: r.dataset.state}));""")

    def click(self, selector):
        """Click the element as a user would; the page may have just redrawn it: find it again."""
        def attempt():
            try:
                self.driver.find_element(By.CSS_SELECTOR, selector).click()
                return True
            except StaleElementReferenceException:
                return False
        wait_for(attempt, timeout=PAGE_DEADLINE_S, what="a click on " + selector)

    def message(self):
        return self.driver.find_element(By.ID, "message").text

    def quit(self):
        self.driver.quit()


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    gw = WebGateway(tmp_path_factory.mktemp("web"))
    browser = None
    try:
        browser = Browser()
        browser.driver.get(gw.url + "/")
        yield gw, browser
    finally:
        if browser is not None:
            browser.quit()
        gw.stop()


def shown_matches(text, value, decimals):
    """A number the page shows is the value, to the digits it shows."""
    return abs(float(text) - value) <= 0.5 * 10 ** -decimals + 1e-9


def test_each_tile_shows_the_boards_telemetry(web):
    gw, browser = web
    tiles = wait_for(lambda: (lambda t: t if len(t) == len(STAGES) and all(r["record"] for r in t.values()) else None)(
        browser.tiles()), timeout=PAGE_DEADLINE_S, what="a record in every tile")
    for addr in STAGES:
        shown = tiles[str(addr)]
        record = gw.board_record(addr, int(shown["record"]))
        assert shown["mode"] == messages.MODES[record["mode"]]
        for field, decimals in DECIMALS.items():
            assert shown_matches(shown[field], store.engineering(field, record[field]), decimals), (addr, field, shown)
    # the stages' pH differ (1.35, 1.5, ...): each tile is its own board's, named as the plant file names it
    assert len({tiles[str(a)]["ph"] for a in STAGES}) == len(STAGES)
    assert [browser.driver.find_element(By.CSS_SELECTOR, "#stage-%d h3" % a).text.split("\n")[0] for a in STAGES] == \
        ["Stage %d · E%d" % (a, a) for a in STAGES]


def test_ph_fault_shows_fault_and_acknowledge_needs_a_login(web):
    gw, browser = web
    driver = browser.driver
    gw.plant.stages[FAULTY].ph_fault = True
    tile = wait_for(lambda: (lambda t: t if t["ph"] == "FAULT" else None)(browser.tiles()[str(FAULTY)]),
                    timeout=PAGE_DEADLINE_S, what="FAULT on the faulty stage's tile")
    assert "ph_sensor_fault" in tile["alarms"] and "abnormal" in tile["classes"]
    wait_for(lambda: {"stage": FAULTY, "alarm": "ph_sensor_fault", "state": "active unacked"} in browser.alarm_rows(),
             timeout=PAGE_DEADLINE_S, what="the pH sensor fault in the alarm list")
    for addr, t in browser.tiles().items():  # the other stages still show numbers
        if addr != str(FAULTY):
            float(t["ph"])
    BUILD.mkdir(exist_ok=True)
    driver.save_screenshot(str(BUILD / "web-overview.png"))

    # the electrode back: a number again, the alarm cleared but latched until acknowledged
    gw.plant.stages[FAULTY].ph_fault = False
    wait_for(lambda: browser.tiles()[str(FAULTY)]["ph"] not in ("FAULT", "stale", "--"), timeout=PAGE_DEADLINE_S,
             what="a pH value again")
    wait_for(lambda: {"stage": FAULTY, "alarm": "ph_sensor_fault", "state": "cleared unacked"} in browser.alarm_rows(),
             timeout=PAGE_DEADLINE_S, what="the alarm cleared, not acknowledged")
    assert gw.board_alarms(FAULTY)["alarms_unacked"] >> PH_BIT & 1

    # without a login: refused, and the board still holds the alarm
    browser.click("button.ack[data-stage='%d']" % FAULTY)
    wait_for(lambda: "log in" in browser.message(), timeout=PAGE_DEADLINE_S, what="the refusal")
    assert gw.board_alarms(FAULTY)["alarms_unacked"] >> PH_BIT & 1

    # a wrong password is refused
    driver.find_element(By.ID, "login-user").send_keys(USER)
    driver.find_element(By.ID, "login-password").send_keys("not the password")
    driver.find_element(By.ID, "login-button").click()
    wait_for(lambda: "wrong user or password" in browser.message(), timeout=PAGE_DEADLINE_S, what="a refused login")

    driver.find_element(By.ID, "login-password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    wait_for(lambda: "logged in as %s" % USER in browser.message(), timeout=PAGE_DEADLINE_S, what="the login")
    # logged in, but a write without the session's CSRF token (as another site's form would send) is refused
    status = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/ack', {method: 'POST', headers: {'Content-Type': 'application/json'},
                           body: JSON.stringify({stage: %d})}).then(r => done(r.status));""" % FAULTY)
    assert status == 403
    assert gw.board_alarms(FAULTY)["alarms_unacked"] >> PH_BIT & 1

    browser.click("button.ack[data-stage='%d']" % FAULTY)
    wait_for(lambda: "acknowledged ph_sensor_fault" in browser.message(), timeout=PAGE_DEADLINE_S,
             what="the acknowledge")
    # the board's latch is cleared: it took the acknowledge, which it takes only signed with the plant key
    assert not gw.board_alarms(FAULTY)["alarms_unacked"] >> PH_BIT & 1
    wait_for(lambda: not any(r["stage"] == FAULTY for r in browser.alarm_rows()), timeout=PAGE_DEADLINE_S,
             what="the alarm gone from the list")


def test_a_stage_without_new_data_shows_stale_never_its_old_numbers(web):
    gw, browser = web
    quiet = 3
    gw.plant.stages[quiet].paused = True
    try:
        tile = wait_for(lambda: (lambda t: t if t["age"].startswith("STALE") else None)(browser.tiles()[str(quiet)]),
                        timeout=PAGE_DEADLINE_S, what="the quiet stage shown stale")
        assert "stale" in tile["classes"] and tile["ph"] == "stale" and tile["flow_aq"] == "stale"
    finally:
        gw.plant.stages[quiet].paused = False
    wait_for(lambda: not browser.tiles()[str(quiet)]["age"].startswith("STALE"), timeout=PAGE_DEADLINE_S,
             what="fresh data again")


def test_ack_without_a_session_is_refused_over_http(web):
    gw, _ = web
    request = urllib.request.Request(gw.url + "/api/ack", data=json.dumps({"stage": 1}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    # a form another site's page could send (no JSON) does not even reach the login
    form = urllib.request.Request(gw.url + "/api/login", data=b"user=operator&password=x", method="POST",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(form, timeout=10)
    assert refused.value.code == 415


def test_trend_is_the_log(web):
    gw, browser = web
    driver = browser.driver
    browser.click(".spans button[data-span='300']")
    canvas = driver.find_element(By.ID, "trend")
    wait_for(lambda: canvas.get_attribute("data-span") == "300" and int(canvas.get_attribute("data-points")) > 2,
             timeout=PAGE_DEADLINE_S, what="a 5-minute trend")
    trend = driver.execute_script("return window.sx.trend")
    with sqlite3.connect(gw.db) as c:
        rows = c.execute("SELECT time, ph, alarms_active FROM telemetry WHERE stage = 1 AND time >= ? AND time <= ?",
                         (math.floor(trend["start"]), trend["end"])).fetchall()
    logged = {}  # time -> the pH readings of that second (a faulted one is none)
    for t, ph, alarms in rows:
        logged.setdefault(t, []).append(store.reading("ph", ph, alarms))
    assert trend["bucket_s"] == 1
    fetched = [(t, v) for t, v in zip(trend["t"], trend["ph"]) if t in logged]  # not the live points added since
    assert len(fetched) >= 2
    for t, v in fetched:
        readings = [r for r in logged[t] if r is not None]
        if not readings:
            assert v is None, t  # a faulted reading is a gap in the trend, never a number
        else:
            assert abs(v - sum(readings) / len(readings)) < 1e-6, t


def test_live_updates_come_once_per_poll_round_at_most(web):
    gw, browser = web
    seen = browser.driver.execute_script("return window.sx.roundsSeen.slice()")
    wait_for(lambda: len(browser.driver.execute_script("return window.sx.roundsSeen")) > len(seen) + 2,
             timeout=PAGE_DEADLINE_S, what="more live updates")
    seen = browser.driver.execute_script("return window.sx.roundsSeen")
    assert all(a < b for a, b in zip(seen, seen[1:])), seen  # each update from a later round than the one before
    # the trend at its live end grows with them
    trend = browser.driver.execute_script("return window.sx.trend")
    newest = trend["t"][-1]
    wait_for(lambda: browser.driver.execute_script("return window.sx.trend.t.at(-1)") > newest,
             timeout=PAGE_DEADLINE_S, what="a live point in the trend")


def test_no_request_leaves_the_gateway(web):
    gw, browser = web
    urls = browser.collect_requests()
    assert any(u.endswith("/api/events") for u in urls) and any(u.endswith("/static/app.js") for u in urls)
    elsewhere = [u for u in urls if not (u.startswith(gw.url + "/") or u.startswith("data:"))]
    assert not elsewhere
