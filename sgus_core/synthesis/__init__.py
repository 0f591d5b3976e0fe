"""Synthetic SGUS frames with known labels: the appearance families and their measurements.

* ``families``: every family by name (``phantom``, ``randomised``, ``scatter``), one signature;
* ``phantom``: the realistic raw-screenshot phantom (the demo data);
* ``randomised``: SynthSeg-style random label maps with random appearance per tissue;
* ``scatter``: point scatterers convolved with an ultrasound point-spread function;
* ``family``: the :class:`~sgus_core.synthesis.family.SynthFrame` they all return;
* ``frame_stats``: measures frames the way ``docs/SGUS.md`` measured real ones.
"""
