"""The facility's physics outside the IT: outdoor weather and the halls' cooling plants.

Pure functions and typed data, computed at build time (:mod:`sim.build` puts them in the
``Plan``) and evaluated by the engine at each weather step. Nothing here imports simpy or the
engine. Temperatures in °C (``_c``), power in watts (``_w``), time in seconds (``_s``).
"""
