"""Story: the executive update (narrative, deck / HTML / PDF writers, spreadsheet exports).

``from cxmetrics import story`` gives the narrative's functions (``story.story``, ``story.build``)
as the flat module did.
"""

from cxmetrics.story.narrative import Slide, build, department_story, story  # noqa: F401
