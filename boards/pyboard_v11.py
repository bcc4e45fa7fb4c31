"""pyboard-v11: MicroPython pyboard v1.1 (STM32F405), RS-485 on UART2 (X3/X4)."""
BOARD = {
    "name": "pyboard-v11",
    "mcu": "STM32F405",
    "platform": "pyboard",  # sys.platform, and what sys.implementation._machine names: flash checks both
    "machine": "STM32F405",
    "hal": "mcu",
    "mpy_arch": "armv7emsp",
    "heap_kb": 100,
    "bus": {"uart": 2, "baud": 115200, "de": "X5"},
    "adc": {"bits": 12, "vref_mv": 3300, "ph": "X19", "orp": "X20", "temperature": "X21"},
    "pulse_in": {"flow_aq": "Y1", "flow_org": "Y2"},
    "pwm_out": {"base_pump": "X1", "acid_pump": "X2", "aq_pump": "Y3", "org_pump": "Y4"},
    "digital_out": {"valve": "Y5", "outputs_enable": "Y6"},
    "wdt_ms": 2000,
}
