"""Hardware abstraction: the only firmware code that touches `machine` or host devices."""


def open_hal(board):
    """The HAL backend a board definition names."""
    if board["hal"] == "unix":
        from hal.unix_sim import UnixSimHal
        return UnixSimHal(board)
    from hal.mcu import McuHal
    return McuHal(board)
