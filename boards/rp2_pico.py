"""rp2-pico: Raspberry Pi Pico (RP2040), RS-485 transceiver on UART0."""
BOARD = {
    "name": "rp2-pico",
    "mcu": "RP2040",
    "platform": "rp2",  # sys.platform, and what sys.implementation._machine names: flash checks both
    "machine": "RP2040",
    "hal": "mcu",
    "mpy_arch": "armv6m",
    "heap_kb": 160,
    "bus": {"uart": 0, "baud": 115200, "tx": 0, "rx": 1, "de": 2},
    "adc": {"bits": 12, "vref_mv": 3300, "ph": 26, "orp": 27, "temperature": 28},
    "pulse_in": {"flow_aq": 14, "flow_org": 15},
    "pwm_out": {"base_pump": 16, "acid_pump": 17, "aq_pump": 18, "org_pump": 19},
    "digital_out": {"valve": 20, "outputs_enable": 21},
    "wdt_ms": 2000,
}
