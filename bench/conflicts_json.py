"""Reads a `conflicts.json` of any version the project reads (3 to 7) in version 4's shape, for
the benchmark scripts: every location holds its object (`what`) and every access its code
sites, each site its frames. Version 5 keeps frames, sites and objects once, in the tables
`frames`, `sites` and `objects`, and refers to them by index; `expand` resolves them (the same
dicts are shared, not copied). Versions 3 and 4 are returned as they are (version 3 has no
`mode` fields). Version 6 is version 5 with tests of three calls (a location of calls other
than a and b names its `slots`). Version 7 is version 6 with call stacks: a side's `stack` lists
the sites of its callers' call instructions, innermost first, resolved like its `sites`."""
import json


def expand(data):
    """The conflicts file `data` (parsed JSON) with version 5's (to 7's) tables resolved, in
    place."""
    if data.get("version") not in (5, 6, 7):
        return data
    frames, objects = data.pop("frames"), data.pop("objects")
    sites = [dict(s, frames=[frames[i] for i in s["frames"]]) for s in data.pop("sites")]
    for t in data["tests"]:
        for key in ("shared", "false_sharing"):
            for loc in t.get(key, []):
                loc["what"] = objects[loc["what"]]
                for side in ("a", "b"):
                    loc[side]["sites"] = [sites[i] for i in loc[side]["sites"]]
                    if "stack" in loc[side]:
                        loc[side]["stack"] = [sites[i] for i in loc[side]["stack"]]
    return data


def load(path):
    """`expand` of the file at `path`."""
    with open(path) as f:
        return expand(json.load(f))
