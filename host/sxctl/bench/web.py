"""The web view's figures: a 16-stage overview's load time in headless Chromium, and how fast a new
sample reaches the page. A real gateway (`sxctl serve --http`) over 16 virtual boards that a steady
plant drives in real time (sim/steady.py)."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import pathlib

from . import Figure
from ..waiting import wait_for
from .gateway import free_port

STAGES = 16
LOADS = 5
STEPS = 5
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SXCTL = [sys.executable, "-m", "sxctl"]


def _wait(condition, timeout, what):
    return wait_for(condition, timeout, what, interval=0.02)


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--no-first-run", "--disable-background-networking"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def run(options):
    from ..gateway import state
    from ..sim.steady import PlantDriver, Stage

    folder = pathlib.Path(tempfile.mkdtemp(prefix="sxctl-bench-web-"))
    ports_file = folder / "ports.json"
    sim = subprocess.Popen(SXCTL + ["sim", "--stages", str(STAGES), "--plant-link", "--ports-file", str(ports_file)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    procs, plant, browser = [sim], None, None
    try:
        _wait(lambda: ports_file.exists() or sim.poll() is not None, 120, "the virtual boards")
        ports = json.loads(ports_file.read_text())
        stages = {a: Stage(ph=1.5) for a in range(1, STAGES + 1)}
        plant = PlantDriver(ports, stages)
        port = free_port()
        env = dict(os.environ, SXCTL_STATE_DIR=str(folder / "state"), SXCTL_WEB_USERS=str(folder / "users"))
        serve = subprocess.Popen(SXCTL + ["serve", "--bus", ports["bus"], "--stage", "1-%d" % STAGES, "--db",
                                          str(folder / "log.sqlite"), "--modbus", "off", "--http", "127.0.0.1:%d" % port],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        procs.append(serve)
        _wait(lambda: state.find(ports["bus"], folder / "state"), 60, "the gateway")
        browser = _browser()
        url = "http://127.0.0.1:%d/" % port
        browser.get(url)
        _wait(lambda: browser.execute_script(
            "return window.sx.overview && window.sx.overview.stages.every(s => s.fresh)"), 60, "every stage online")
        loads = []
        for _ in range(LOADS):
            browser.get(url)
            loads.append(_wait(lambda: browser.execute_script("return window.sx.firstShown"), 30, "the overview"))
        # a step in stage 1's pH: from the plant's change to the page showing it
        steps = []
        for i in range(STEPS):
            target = 2.5 if i % 2 == 0 else 1.5
            at = time.time()
            stages[1].ph = target
            shown = _wait(lambda: browser.execute_script(
                "const t = document.querySelector('#stage-1 [data-field=ph]');"
                "return t && Math.abs(Number(t.textContent) - arguments[0]) < 0.05 ? Date.now() : null;", target),
                30, "the step on the page")
            steps.append(shown - at * 1000)
            time.sleep(1.0)
        read_to_page = browser.execute_script("return window.sx.readToPage")
    finally:
        if browser is not None:
            browser.quit()
        if plant is not None:
            plant.stop()
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
    read_to_page.sort()
    p99 = read_to_page[min(len(read_to_page) - 1, int(0.99 * len(read_to_page)))]
    return [
        Figure("web.overview16_load_ms", round(statistics.median(loads), 1), "ms", ("<=", 1000.0),
               "navigation to the %d tiles drawn with data, median of %d loads (max %.0f)"
               % (STAGES, LOADS, max(loads))),
        Figure("web.read_to_page_p99_ms", round(p99, 1), "ms", ("<=", 1500.0),
               "gateway read of a record to the page showing it, %d samples (median %.0f); goal: period + 500 ms"
               % (len(read_to_page), statistics.median(read_to_page))),
        Figure("web.step_to_page_ms", round(statistics.median(steps), 1), "ms", None,
               "a step in the plant's pH to the page, through the board's measuring and recording and the "
               "gateway's poll (median of %d, max %.0f)" % (STEPS, max(steps))),
    ]
