"""Training jobs: data, training and evaluation of the headline classifier, locally or on SageMaker."""
