"""What every board's chip gives a HAL alike, through `machine`: the watchdog, the reset and
the cause of the last one (on a virtual board its ROM provides them, host/sxctl/sim/board_rom.py)."""
import machine


class Chip:
    _wdt = None
    wdt_ms = 0  # the board definition's `wdt_ms`; 0: no watchdog

    def start_watchdog(self):
        """Started once the loop runs; it cannot be stopped and outlives a soft reset, so a
        stopped or stuck board is reset. Maintenance and fail-safe boots never start it."""
        if self.wdt_ms and self._wdt is None:
            self._wdt = machine.WDT(timeout=self.wdt_ms)

    def feed_watchdog(self):
        wdt = self._wdt
        if wdt is not None:
            wdt.feed()

    def watchdog_reset(self):
        """True when the watchdog caused the last reset."""
        cause = getattr(machine, "reset_cause", None)
        return cause is not None and cause() == getattr(machine, "WDT_RESET", -1)

    def reset(self):
        machine.reset()  # a hard reset: main.py runs again, as at power-up
