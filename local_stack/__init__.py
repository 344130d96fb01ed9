"""The stack offline (`make local`), beside the Chalice project rather than in it: the orchestrator
(`orchestrator`), `chalice local` without the Nagle stall (`chalice_server`), moto's DynamoDB (`dynamodb`) and its
fault-injecting proxy (`dynamodb_faults`); devkit/local_stack_state.py holds what other tools need to find a running
stack. Run from the repository root:

    python -m local_stack.orchestrator --model-dir artifacts/model
"""
