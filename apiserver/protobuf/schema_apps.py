"""Protobuf message schemas for apps/v1, batch/v1, autoscaling/v1, policy/v1 and scheduling/v1.

Field numbers and types are those of the upstream generated.proto files (k8s.io/api and
k8s.io/apimachinery, release 1.33, a superset of what kubectl 1.32 writes); names are the JSON keys.
See fieldtypes.py for the type grammar. Data only: decode.py interprets it.
"""

from apiserver.protobuf.fieldtypes import Schema

MESSAGES: Schema = {
    "apps.Deployment": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "apps.DeploymentSpec"),
        3: ("status", "apps.DeploymentStatus"),
    },
    "apps.ReplicaSet": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "apps.ReplicaSetSpec"),
        3: ("status", "apps.ReplicaSetStatus"),
    },
    "apps.DaemonSet": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "apps.DaemonSetSpec"),
        3: ("status", "apps.DaemonSetStatus"),
    },
    "apps.StatefulSet": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "apps.StatefulSetSpec"),
        3: ("status", "apps.StatefulSetStatus"),
    },
    "batch.Job": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "batch.JobSpec"), 3: ("status", "batch.JobStatus"),
    },
    "batch.CronJob": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "batch.CronJobSpec"),
        3: ("status", "batch.CronJobStatus"),
    },
    "policy.PodDisruptionBudget": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "policy.PodDisruptionBudgetSpec"),
        3: ("status", "policy.PodDisruptionBudgetStatus"),
    },
    "policy.Eviction": {1: ("metadata", "meta.ObjectMeta"), 2: ("deleteOptions", "meta.DeleteOptions")},
    "scheduling.PriorityClass": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("value", "int!"), 3: ("globalDefault", "bool"),
        4: ("description", "str"), 5: ("preemptionPolicy", "*str"),
    },
    "autoscaling.Scale": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "autoscaling.ScaleSpec"),
        3: ("status", "autoscaling.ScaleStatus"),
    },
    "apps.DeploymentSpec": {
        1: ("replicas", "*int"), 2: ("selector", "meta.LabelSelector"),
        3: ("template", "core.PodTemplateSpec"), 4: ("strategy", "apps.DeploymentStrategy"),
        5: ("minReadySeconds", "int"), 6: ("revisionHistoryLimit", "*int"), 7: ("paused", "bool"),
        9: ("progressDeadlineSeconds", "*int"),
    },
    "apps.DeploymentStatus": {
        1: ("observedGeneration", "int"), 2: ("replicas", "int"), 3: ("updatedReplicas", "int"),
        4: ("availableReplicas", "int"), 5: ("unavailableReplicas", "int"),
        6: ("conditions", "[]apps.DeploymentCondition"), 7: ("readyReplicas", "int"),
        8: ("collisionCount", "*int"), 9: ("terminatingReplicas", "*int"),
    },
    "apps.ReplicaSetSpec": {
        1: ("replicas", "*int"), 2: ("selector", "meta.LabelSelector"),
        3: ("template", "core.PodTemplateSpec"), 4: ("minReadySeconds", "int"),
    },
    "apps.ReplicaSetStatus": {
        1: ("replicas", "int!"), 2: ("fullyLabeledReplicas", "int"), 3: ("observedGeneration", "int"),
        4: ("readyReplicas", "int"), 5: ("availableReplicas", "int"),
        6: ("conditions", "[]apps.ReplicaSetCondition"), 7: ("terminatingReplicas", "*int"),
    },
    "apps.DaemonSetSpec": {
        1: ("selector", "meta.LabelSelector"), 2: ("template", "core.PodTemplateSpec"),
        3: ("updateStrategy", "apps.DaemonSetUpdateStrategy"), 4: ("minReadySeconds", "int"),
        6: ("revisionHistoryLimit", "*int"),
    },
    "apps.DaemonSetStatus": {
        1: ("currentNumberScheduled", "int!"), 2: ("numberMisscheduled", "int!"),
        3: ("desiredNumberScheduled", "int!"), 4: ("numberReady", "int!"), 5: ("observedGeneration", "int"),
        6: ("updatedNumberScheduled", "int"), 7: ("numberAvailable", "int"), 8: ("numberUnavailable", "int"),
        9: ("collisionCount", "*int"), 10: ("conditions", "[]apps.DaemonSetCondition"),
    },
    "apps.StatefulSetSpec": {
        1: ("replicas", "*int"), 2: ("selector", "meta.LabelSelector"),
        3: ("template", "core.PodTemplateSpec"), 4: ("volumeClaimTemplates", "[]core.PersistentVolumeClaim"),
        5: ("serviceName", "str!"), 6: ("podManagementPolicy", "str"),
        7: ("updateStrategy", "apps.StatefulSetUpdateStrategy"), 8: ("revisionHistoryLimit", "*int"),
        9: ("minReadySeconds", "int"),
        10: ("persistentVolumeClaimRetentionPolicy", "apps.StatefulSetPersistentVolumeClaimRetentionPolicy"),
        11: ("ordinals", "apps.StatefulSetOrdinals"),
    },
    "apps.StatefulSetStatus": {
        1: ("observedGeneration", "int"), 2: ("replicas", "int!"), 3: ("readyReplicas", "int"),
        4: ("currentReplicas", "int"), 5: ("updatedReplicas", "int"), 6: ("currentRevision", "str"),
        7: ("updateRevision", "str"), 9: ("collisionCount", "*int"),
        10: ("conditions", "[]apps.StatefulSetCondition"), 11: ("availableReplicas", "int!"),
    },
    "batch.JobSpec": {
        1: ("parallelism", "*int"), 2: ("completions", "*int"), 3: ("activeDeadlineSeconds", "*int"),
        4: ("selector", "meta.LabelSelector"), 5: ("manualSelector", "*bool"),
        6: ("template", "core.PodTemplateSpec"), 7: ("backoffLimit", "*int"),
        8: ("ttlSecondsAfterFinished", "*int"), 9: ("completionMode", "*str"), 10: ("suspend", "*bool"),
        11: ("podFailurePolicy", "batch.PodFailurePolicy"), 12: ("backoffLimitPerIndex", "*int"),
        13: ("maxFailedIndexes", "*int"), 14: ("podReplacementPolicy", "*str"), 15: ("managedBy", "*str"),
        16: ("successPolicy", "batch.SuccessPolicy"),
    },
    "batch.JobStatus": {
        1: ("conditions", "[]batch.JobCondition"), 2: ("startTime", "meta.Time"),
        3: ("completionTime", "meta.Time"), 4: ("active", "int"), 5: ("succeeded", "int"),
        6: ("failed", "int"), 7: ("completedIndexes", "str"),
        8: ("uncountedTerminatedPods", "batch.UncountedTerminatedPods"), 9: ("ready", "*int"),
        10: ("failedIndexes", "*str"), 11: ("terminating", "*int"),
    },
    "batch.CronJobSpec": {
        1: ("schedule", "str!"), 2: ("startingDeadlineSeconds", "*int"), 3: ("concurrencyPolicy", "str"),
        4: ("suspend", "*bool"), 5: ("jobTemplate", "batch.JobTemplateSpec"),
        6: ("successfulJobsHistoryLimit", "*int"), 7: ("failedJobsHistoryLimit", "*int"),
        8: ("timeZone", "*str"),
    },
    "batch.CronJobStatus": {
        1: ("active", "[]core.ObjectReference"), 4: ("lastScheduleTime", "meta.Time"),
        5: ("lastSuccessfulTime", "meta.Time"),
    },
    "policy.PodDisruptionBudgetSpec": {
        1: ("minAvailable", "intstr.IntOrString"), 2: ("selector", "meta.LabelSelector"),
        3: ("maxUnavailable", "intstr.IntOrString"), 4: ("unhealthyPodEvictionPolicy", "*str"),
    },
    "policy.PodDisruptionBudgetStatus": {
        1: ("observedGeneration", "int"), 2: ("disruptedPods", "map[str]meta.Time"),
        3: ("disruptionsAllowed", "int!"), 4: ("currentHealthy", "int!"), 5: ("desiredHealthy", "int!"),
        6: ("expectedPods", "int!"), 7: ("conditions", "[]meta.Condition"),
    },
    "autoscaling.ScaleSpec": {1: ("replicas", "int")},
    "autoscaling.ScaleStatus": {1: ("replicas", "int!"), 2: ("selector", "str")},
    "apps.DeploymentStrategy": {1: ("type", "str"), 2: ("rollingUpdate", "apps.RollingUpdateDeployment")},
    "apps.DeploymentCondition": {
        1: ("type", "str!"), 2: ("status", "str!"), 4: ("reason", "str"), 5: ("message", "str"),
        6: ("lastUpdateTime", "meta.Time"), 7: ("lastTransitionTime", "meta.Time"),
    },
    "apps.ReplicaSetCondition": {
        1: ("type", "str!"), 2: ("status", "str!"), 3: ("lastTransitionTime", "meta.Time"),
        4: ("reason", "str"), 5: ("message", "str"),
    },
    "apps.DaemonSetUpdateStrategy": {1: ("type", "str"), 2: ("rollingUpdate", "apps.RollingUpdateDaemonSet")},
    "apps.DaemonSetCondition": {
        1: ("type", "str!"), 2: ("status", "str!"), 3: ("lastTransitionTime", "meta.Time"),
        4: ("reason", "str"), 5: ("message", "str"),
    },
    "apps.StatefulSetUpdateStrategy": {
        1: ("type", "str"), 2: ("rollingUpdate", "apps.RollingUpdateStatefulSetStrategy"),
    },
    "apps.StatefulSetPersistentVolumeClaimRetentionPolicy": {
        1: ("whenDeleted", "str"), 2: ("whenScaled", "str"),
    },
    "apps.StatefulSetOrdinals": {1: ("start", "int!")},
    "apps.StatefulSetCondition": {
        1: ("type", "str!"), 2: ("status", "str!"), 3: ("lastTransitionTime", "meta.Time"),
        4: ("reason", "str"), 5: ("message", "str"),
    },
    "batch.PodFailurePolicy": {1: ("rules", "[]batch.PodFailurePolicyRule")},
    "batch.SuccessPolicy": {1: ("rules", "[]batch.SuccessPolicyRule")},
    "batch.JobCondition": {
        1: ("type", "str!"), 2: ("status", "str!"), 3: ("lastProbeTime", "meta.Time"),
        4: ("lastTransitionTime", "meta.Time"), 5: ("reason", "str"), 6: ("message", "str"),
    },
    "batch.UncountedTerminatedPods": {1: ("succeeded", "[]str"), 2: ("failed", "[]str")},
    "batch.JobTemplateSpec": {1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "batch.JobSpec")},
    "apps.RollingUpdateDeployment": {
        1: ("maxUnavailable", "intstr.IntOrString"), 2: ("maxSurge", "intstr.IntOrString"),
    },
    "apps.RollingUpdateDaemonSet": {
        1: ("maxUnavailable", "intstr.IntOrString"), 2: ("maxSurge", "intstr.IntOrString"),
    },
    "apps.RollingUpdateStatefulSetStrategy": {
        1: ("partition", "*int"), 2: ("maxUnavailable", "intstr.IntOrString"),
    },
    "batch.PodFailurePolicyRule": {
        1: ("action", "str!"), 2: ("onExitCodes", "batch.PodFailurePolicyOnExitCodesRequirement"),
        3: ("onPodConditions", "[]batch.PodFailurePolicyOnPodConditionsPattern"),
    },
    "batch.SuccessPolicyRule": {1: ("succeededIndexes", "*str"), 2: ("succeededCount", "*int")},
    "batch.PodFailurePolicyOnExitCodesRequirement": {
        1: ("containerName", "*str"), 2: ("operator", "str!"), 3: ("values", "[]int"),
    },
    "batch.PodFailurePolicyOnPodConditionsPattern": {1: ("type", "str!"), 2: ("status", "str!")},
}
