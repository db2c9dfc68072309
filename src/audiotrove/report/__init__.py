"""Collection insight for people: statistics (`summary`), problem files (`problems`), restored
files (`restored`), the self-contained HTML report (`html.write_report`) and value formatting
(`format`).

Importing this package is cheap: matplotlib and the decoder load only when a report is written.
"""
