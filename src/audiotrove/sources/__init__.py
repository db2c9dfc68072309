"""Remote sources: where URL items come from and how they are brought home.

    templates.py   ids + a URL template (`add --ids --template --id-pattern --field`)
    ia.py          Internet Archive queries (`add --ia-query --ia-format --ia-multi --limit`)
    metadata.py    a user's CSV joined onto the files (`add --metadata --match-column`: meta.*)
    register.py    storing URL entries and their `source.*` facts in the catalog
    fetching.py    `audiotrove fetch`: download every URL without a verified copy (io/fetch.py)

A URL stays the file's identity (`path`); its download is recorded under `fetch.*` and the
steps read the verified local copy (runner/plan.py), so a fetched file is analyzed like a
local one.
"""
