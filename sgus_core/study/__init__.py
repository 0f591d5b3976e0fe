"""Reading studies: ``rounds`` (study rounds, rater queues, the one visibility rule for blinding)
and ``scoring`` (de Vita, OMERACT and Hocevar definitions, patient totals)."""
