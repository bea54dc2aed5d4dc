"""Digital-maturity self-assessment (数字化评估) against the MIIT SME index, with evidence from the MES's own data.

`index` (the index as data), `scoring` (pure: answers -> scores, levels, gap), `roadmap` (pure: gap ->
next steps), `evidence` (reads the MES database) and `proposals` (pure: evidence -> proposed answers),
`models` / `service` (assessments kept over time), `api` and `pages` (HTTP).
"""
