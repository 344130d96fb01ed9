"""What every box on the developer's machine needs, one small module per fact: where the checkout is (`repo`).

Imported by model tools, training_jobs' commands, the Chalice project's tools and loadtest; never by what ships:
the Lambda zip (chalice_app/ alone), model serving (model.tar.gz code/ and the image), or the code a SageMaker
training job runs (training_jobs/launch.py ships training_jobs/ and model/ only). Where those need one of these
facts, they keep a copy that says why.
"""
