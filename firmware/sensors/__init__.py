"""Stage sensors: pH, ORP, flow and temperature conversions plus signal checks, in fixed point."""
