"""esp32-devkitc: Espressif ESP32-DevKitC (ESP32-WROOM-32, no PSRAM), RS-485 on UART2."""
BOARD = {
    "name": "esp32-devkitc",
    "mcu": "ESP32",
    "platform": "esp32",  # sys.platform, and what sys.implementation._machine names: flash checks both
    "machine": "ESP32",
    "hal": "mcu",
    "mpy_arch": "xtensawin",
    "heap_kb": 110,
    "bus": {"uart": 2, "baud": 115200, "tx": 17, "rx": 16, "de": 4},
    "adc": {"bits": 12, "vref_mv": 3300, "ph": 36, "orp": 39, "temperature": 34},
    "pulse_in": {"flow_aq": 25, "flow_org": 26},
    "pwm_out": {"base_pump": 27, "acid_pump": 14, "aq_pump": 32, "org_pump": 33},
    "digital_out": {"valve": 18, "outputs_enable": 23},
    "wdt_ms": 2000,
}
