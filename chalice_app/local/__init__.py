"""The stack offline (`make local`): the orchestrator (`stack`), `chalice local` without the Nagle stall
(`server`), moto's DynamoDB (`dynamodb`) and its fault-injecting proxy (`dynamodb_faults`); `state` holds what
other tools need to find a running stack. Run from the repository root:

    python -m chalice_app.local.stack --model-dir artifacts/model
"""

