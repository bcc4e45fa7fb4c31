"""Stage control: PID with titration-curve scheduling, the dosing envelope and alarms, in fixed point."""
