"""`lms chat`: a conversation with a model in the terminal, over `POST /api/v0/chat/completions`.

`session` holds the conversation and the answers' stats, `slash` the slash commands, `answer` streams one
answer, `view` draws it (rich markdown on a terminal, plain text otherwise), `models` picks and loads
the model, `loop` is the interactive prompt.
"""
