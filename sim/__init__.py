"""aifactory: a discrete-event simulator of a gigawatt AI factory.

The public API for scripts and notebooks is re-exported from :mod:`sim.api`; importing this
package has no side effects.
"""

__version__ = "0.1.0"
