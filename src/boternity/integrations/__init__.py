"""boternity as the conversation store of other frameworks.

- :mod:`boternity.integrations.openai_agents`: ``BoternitySession``, a session of the OpenAI
  Agents SDK (``pip install 'boternity[openai-agents]'``).
- :mod:`boternity.integrations.langchain`: ``BoternityChatMessageHistory``, a LangChain chat
  message history (``pip install 'boternity[langchain]'``).

Each framework's session id names one chat session of one bot (stored as the session's key:
created on first write, unique per bot). Nothing here is imported by ``boternity`` itself, and
each module imports its framework only when it is imported.
"""
